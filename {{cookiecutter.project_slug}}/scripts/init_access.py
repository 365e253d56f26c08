#!/usr/bin/env python3
"""Create the first admin from a secret, and apply config/access.yaml's roles and groups (FAB).

    python scripts/init_access.py [--access-file config/access.yaml] [--check]

Every deployment's one-off init job runs this after `airflow db migrate`: docker compose's
airflow-init and the Helm chart's create-user job. It is idempotent: a second run changes
nothing. An admin that exists already keeps the password it has now, and roles and users that
already match config/access.yaml are left untouched.

A group gives its members its roles. FAB's auth manager authorizes from a user's own roles only
(not from FAB's user groups), so every user a group lists gets exactly the roles of the groups
that list it; users no group lists keep the roles given them in the UI.

The first admin comes from the environment, never from a tracked file. Each variable may instead
name a file with `_FILE` appended (a mounted Kubernetes Secret):
  AIRFLOW_ADMIN_USERNAME  the admin's user name
  AIRFLOW_ADMIN_EMAIL     its email address
  AIRFLOW_ADMIN_PASSWORD  at least 12 characters; needed only while the admin does not exist,
                          and never printed
--check validates config/access.yaml and the admin settings without touching the database.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ACCESS_FILE = Path(__file__).resolve().parents[1] / "config" / "access.yaml"
# FAB recreates these on every sync with its own permissions, so the file may only assign them.
BUILT_IN_ROLES = ("Admin", "Op", "User", "Viewer", "Public")
# FAB gives every custom role the home page; declaring it keeps a second run from changing anything.
HOME_PAGE = ("can_read", "Website")
MIN_PASSWORD_LENGTH = 12


class AccessError(Exception):
    """A problem the team must fix; the message names the setting."""


@dataclass
class Group:
    name: str
    roles: list[str]
    description: str = ""
    members: list[str] | None = None  # None: membership is managed outside this file


@dataclass
class Access:
    roles: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)


@dataclass
class Admin:
    username: str
    email: str
    password: str | None


def load_access(path: Path = ACCESS_FILE) -> Access:
    """The roles and groups config/access.yaml declares, with every problem named by its place."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise AccessError(f"cannot read {path}: {error}") from None
    if not isinstance(document, dict) or set(document) - {"roles", "groups"}:
        raise AccessError(f"{path}: only `roles` and `groups` may be set at the top level")
    access = Access()
    for name, permissions in (document.get("roles") or {}).items():
        if name in BUILT_IN_ROLES:
            raise AccessError(f"{path}: roles.{name} is built into FAB and cannot be redefined; add a new role")
        if not isinstance(permissions, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) and part for part in pair)
            for pair in permissions
        ):
            raise AccessError(f"{path}: roles.{name} must be a list of [action, resource] pairs")
        access.roles[name] = {tuple(pair) for pair in permissions} | {HOME_PAGE}
    known_roles = set(BUILT_IN_ROLES) | set(access.roles)
    for name, spec in (document.get("groups") or {}).items():
        if not isinstance(spec, dict) or set(spec) - {"roles", "description", "members"}:
            raise AccessError(f"{path}: groups.{name} takes only roles, description and members")
        roles = spec.get("roles")
        if not isinstance(roles, list) or not roles or not all(isinstance(role, str) for role in roles):
            raise AccessError(f"{path}: groups.{name}.roles must list at least one role")
        unknown = sorted(set(roles) - known_roles)
        if unknown:
            raise AccessError(
                f"{path}: groups.{name}.roles names unknown roles {unknown}; known: {sorted(known_roles)}"
            )
        members = spec.get("members")
        if members is not None and not (isinstance(members, list) and all(isinstance(m, str) for m in members)):
            raise AccessError(f"{path}: groups.{name}.members must be a list of user names")
        access.groups.append(Group(name, roles, str(spec.get("description") or ""), members))
    return access


def secret_setting(environ: dict[str, str], name: str) -> str | None:
    """A setting from NAME, or from the file NAME_FILE names (trailing newline dropped)."""
    if environ.get(f"{name}_FILE"):
        try:
            return Path(environ[f"{name}_FILE"]).read_text().rstrip("\n")
        except OSError as error:
            raise AccessError(f"{name}_FILE: cannot read {environ[f'{name}_FILE']}: {error.strerror}") from None
    return environ.get(name) or None


def load_admin(environ: dict[str, str]) -> Admin:
    username = secret_setting(environ, "AIRFLOW_ADMIN_USERNAME")
    email = secret_setting(environ, "AIRFLOW_ADMIN_EMAIL")
    if not username:
        raise AccessError("AIRFLOW_ADMIN_USERNAME is not set: the first admin's user name (docs/access.md)")
    if not email or "@" not in email:
        raise AccessError("AIRFLOW_ADMIN_EMAIL is not set to an email address (docs/access.md)")
    password = secret_setting(environ, "AIRFLOW_ADMIN_PASSWORD")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise AccessError(f"AIRFLOW_ADMIN_PASSWORD must have at least {MIN_PASSWORD_LENGTH} characters")
    return Admin(username, email, password)


def sync_role(sm, name: str, wanted: set[tuple[str, str]]) -> str:
    """Make one custom role hold exactly the wanted permissions; returns what changed."""
    permissions = []
    for action, resource in sorted(wanted):
        if sm.get_action(action) is None:
            raise AccessError(f"config/access.yaml: roles.{name}: FAB knows no action {action!r}")
        if sm.get_resource(resource) is None:
            raise AccessError(f"config/access.yaml: roles.{name}: FAB knows no resource {resource!r}")
        permissions.append(sm.get_permission(action, resource) or sm.create_permission(action, resource))
    role = sm.find_role(name)
    created = role is None
    if created:
        role = sm.add_role(name)
    have = {(permission.action.name, permission.resource.name) for permission in role.permissions}
    if have == wanted:
        return "unchanged"
    role.permissions = permissions
    sm.session.commit()
    return "created" if created else f"permissions set to the {len(wanted)} declared"


def member_roles(access: Access) -> dict[str, list[str]]:
    """Each user the groups list, with the roles of every group that lists it."""
    roles: dict[str, list[str]] = {}
    for group in access.groups:
        for username in group.members or []:
            roles.setdefault(username, [])
            roles[username] += [role for role in group.roles if role not in roles[username]]
    return roles


def sync_member(sm, username: str, role_names: list[str]) -> str:
    user = sm.find_user(username=username)
    if user is None:
        return "not created yet: it gets its roles at the first run after it exists"
    if {role.name for role in user.roles} == set(role_names):
        return "unchanged"
    user.roles = [sm.find_role(name) for name in role_names]
    sm.session.commit()
    return f"roles set to {', '.join(sorted(role_names))}"


def ensure_admin(sm, admin: Admin) -> str:
    if sm.find_user(username=admin.username) is not None:
        # Its password may have been changed since: never reset it.
        return "exists, left as it is"
    if admin.password is None:
        raise AccessError(
            f"the admin {admin.username!r} does not exist yet and AIRFLOW_ADMIN_PASSWORD is not set "
            "(.env.auth for docker compose, the airflow-admin Secret on Kubernetes: docs/access.md)"
        )
    sm.add_user(
        username=admin.username,
        first_name=admin.username,
        last_name="",
        email=admin.email,
        role=sm.find_role("Admin"),
        password=admin.password,
    )
    return "created"


def apply(access: Access, admin: Admin) -> None:
    # Imported here: --check and the unit tests run without FAB's Flask app or a database.
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        # What `airflow sync-perm` does: the api-servers skip it ([fab] update_fab_perms = False).
        appbuilder.add_permissions(update_perms=True)
        sm.sync_roles()
        for name, wanted in access.roles.items():
            print(f"role {name}: {sync_role(sm, name, wanted)}")
        for username, role_names in sorted(member_roles(access).items()):
            print(f"user {username}: {sync_member(sm, username, role_names)}")
        print(f"admin {admin.username}: {ensure_admin(sm, admin)}")


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--access-file", type=Path, default=ACCESS_FILE)
    parser.add_argument("--check", action="store_true", help="validate only; touch no database")
    args = parser.parse_args(argv)
    try:
        access = load_access(args.access_file)
        admin = load_admin(os.environ if environ is None else environ)
        if args.check:
            print(f"OK: {len(access.roles)} role(s) and {len(access.groups)} group(s); admin {admin.username}")
            return 0
        apply(access, admin)
    except AccessError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
