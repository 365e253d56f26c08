"""config/access.yaml and scripts/init_access.py: roles as code that FAB can apply, and nothing more.

Permissions are checked against FAB's own names and built-in roles, so a typo or a role that
grants more than intended fails here, before any deployment's init job runs.
"""

from __future__ import annotations

import pytest
from airflow.providers.fab.auth_manager.security_manager.override import FabAirflowSecurityManagerOverride
from airflow.providers.fab.www.security import permissions

from scripts import init_access

BUILT_IN = {config["role"]: set(config["perms"]) for config in FabAirflowSecurityManagerOverride.ROLE_CONFIGS}
WRITES = {permissions.ACTION_CAN_CREATE, permissions.ACTION_CAN_EDIT, permissions.ACTION_CAN_DELETE}
RUNS = {permissions.RESOURCE_DAG, permissions.RESOURCE_DAG_RUN, permissions.RESOURCE_TASK_INSTANCE}
KNOWN_ACTIONS = {value for name, value in vars(permissions).items() if name.startswith("ACTION_")}
KNOWN_RESOURCES = {
    value for name, value in vars(permissions).items() if name.startswith("RESOURCE_") and isinstance(value, str)
}
ADMIN_ENV = {"AIRFLOW_ADMIN_USERNAME": "admin", "AIRFLOW_ADMIN_EMAIL": "admin@example.com"}


@pytest.fixture(scope="module")
def access() -> init_access.Access:
    return init_access.load_access()


def granted(access: init_access.Access, group: str) -> set[tuple[str, str]]:
    (spec,) = [candidate for candidate in access.groups if candidate.name == group]
    return set().union(*(BUILT_IN.get(role) or access.roles[role] for role in spec.roles))


def test_the_team_has_viewer_operator_and_admin_groups(access):
    roles = {group.name: group.roles for group in access.groups}
    assert roles["viewers"] == ["Viewer"] and roles["operators"] == ["Op"] and roles["admins"] == ["Admin"]


def test_every_custom_permission_is_one_fab_knows(access):
    for role, pairs in access.roles.items():
        for action, resource in pairs:
            assert action in KNOWN_ACTIONS, f"{role}: unknown action {action!r}"
            assert resource in KNOWN_RESOURCES, f"{role}: unknown resource {resource!r}"


def test_viewers_can_neither_trigger_nor_edit(access):
    # Only their own password and profile: nothing another user would see change.
    own = {permissions.RESOURCE_MY_PASSWORD, permissions.RESOURCE_MY_PROFILE}
    writes = {(action, resource) for action, resource in granted(access, "viewers") if action in WRITES}
    assert {resource for _, resource in writes} <= own, writes


def test_the_deployer_cannot_run_tasks_read_logs_or_manage_users(access):
    deployer = access.roles["Deployer"]
    assert not {pair for pair in deployer if pair[1] in RUNS - {permissions.RESOURCE_DAG}}
    assert not {pair for pair in deployer if pair[1] in {permissions.RESOURCE_TASK_LOG, permissions.RESOURCE_USER}}
    assert (permissions.ACTION_CAN_CREATE, permissions.RESOURCE_DAG_RUN) not in deployer


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("roles:\n  Viewer: []\n", "built into FAB"),
        ("groups:\n  team:\n    roles: [Superuser]\n", "unknown roles ['Superuser']"),
        ("groups:\n  team:\n    roles: []\n", "groups.team.roles must list at least one role"),
        ("roles:\n  Reader: [[can_read]]\n", "roles.Reader must be a list of [action, resource] pairs"),
        ("users: {}\n", "only `roles` and `groups`"),
    ],
)
def test_a_broken_access_file_names_the_setting(tmp_path, text, problem):
    access_file = tmp_path / "access.yaml"
    access_file.write_text(text)
    with pytest.raises(init_access.AccessError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        init_access.load_access(access_file)


def test_the_admin_password_comes_from_the_environment_or_a_file(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("a-long-enough-secret\n")
    admin = init_access.load_admin(ADMIN_ENV | {"AIRFLOW_ADMIN_PASSWORD_FILE": str(secret)})
    assert admin.password == "a-long-enough-secret"
    assert init_access.load_admin(ADMIN_ENV).password is None  # enough once the admin exists
    with pytest.raises(init_access.AccessError, match="AIRFLOW_ADMIN_PASSWORD must have at least 12"):
        init_access.load_admin(ADMIN_ENV | {"AIRFLOW_ADMIN_PASSWORD": "admin"})
    with pytest.raises(init_access.AccessError, match="AIRFLOW_ADMIN_USERNAME is not set"):
        init_access.load_admin({"AIRFLOW_ADMIN_EMAIL": "admin@example.com"})


def test_check_validates_without_a_database_and_never_prints_the_password(capsys):
    environ = ADMIN_ENV | {"AIRFLOW_ADMIN_PASSWORD": "never-printed-secret"}
    assert init_access.main(["--check"], environ) == 0
    output = capsys.readouterr()
    assert "OK:" in output.out and "never-printed-secret" not in output.out + output.err
