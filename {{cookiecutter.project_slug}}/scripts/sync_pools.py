"""Make the pools of a running Airflow match config/pools.json, through the REST API v2.

    AIRFLOW_API_URL=https://airflow.example.com AIRFLOW_API_USERNAME=... AIRFLOW_API_PASSWORD=... \\
        python -m scripts.sync_pools [--dry-run] [--prune]        # from the project root

Idempotent: a second run changes nothing. Pools missing from the file are kept unless
--prune is given (default_pool is never deleted). Credentials and the API's address are read
as scripts/airflow_api.py describes, and never printed. Standard library only, so it runs on
any CI runner without Airflow installed. The role it needs: docs/access.md, "Access the tools need".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from pathlib import Path

from scripts.airflow_api import AirflowClient, ApiError

POOLS_FILE = Path(__file__).resolve().parents[1] / "config" / "pools.json"
FIELDS = ("slots", "description", "include_deferred")
# The API changes only these on default_pool; its description stays Airflow's.
DEFAULT_POOL_FIELDS = ("slots", "include_deferred")


class PoolsFileError(Exception):
    """config/pools.json is unreadable or invalid; the message says where."""


def load_pools(path: Path) -> dict[str, dict]:
    """The desired pools, validated: every problem is reported before the API is touched."""
    try:
        pools = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PoolsFileError(f"cannot read {path}: {error}") from None
    if not isinstance(pools, dict) or not pools:
        raise PoolsFileError(f"{path} must be a JSON object of pool name -> settings")
    problems = []
    for name, pool in pools.items():
        if not isinstance(pool, dict):
            problems.append(f"{name}: settings must be an object")
            continue
        if not isinstance(pool.get("slots"), int) or isinstance(pool.get("slots"), bool) or pool["slots"] < -1:
            problems.append(f"{name}: slots must be an integer >= -1 (-1 is unlimited)")
        if not isinstance(pool.get("description", ""), str):
            problems.append(f"{name}: description must be a string")
        if not isinstance(pool.get("include_deferred", False), bool):
            problems.append(f"{name}: include_deferred must be true or false")
        if unknown := sorted(set(pool) - set(FIELDS)):
            problems.append(f"{name}: unknown fields {unknown}")
    if problems:
        raise PoolsFileError(f"{path} is invalid:\n  " + "\n  ".join(problems))
    return {
        name: {"slots": pool["slots"], "description": pool.get("description", ""), "include_deferred": False}
        | {key: pool[key] for key in FIELDS if key in pool}
        for name, pool in pools.items()
    }


def existing_pools(client: AirflowClient) -> dict[str, dict]:
    return {
        pool["name"]: {key: pool.get(key) for key in FIELDS} | {"description": pool.get("description") or ""}
        for pool in client.paged("/api/v2/pools", "pools")
    }


def plan(desired: dict[str, dict], existing: dict[str, dict], prune: bool) -> list[tuple[str, str, dict]]:
    """(action, pool, settings) for every change; an empty plan means already in sync."""
    changes = []
    for name, settings in sorted(desired.items()):
        fields = DEFAULT_POOL_FIELDS if name == "default_pool" else FIELDS
        if name not in existing:
            changes.append(("create", name, settings))
        elif any(existing[name].get(key) != settings[key] for key in fields):
            changes.append(("update", name, settings))
    if prune:
        changes += [("delete", name, {}) for name in sorted(set(existing) - set(desired) - {"default_pool"})]
    return changes


def apply(client: AirflowClient, changes: list[tuple[str, str, dict]]) -> None:
    for action, name, settings in changes:
        quoted = urllib.parse.quote(name, safe="")
        if action == "create":
            client.request("POST", "/api/v2/pools", {"name": name, **settings})
        elif action == "update":
            # A PATCH of default_pool is refused unless its update_mask names only the fields it may change.
            mask = {"update_mask": DEFAULT_POOL_FIELDS} if name == "default_pool" else None
            client.request("PATCH", f"/api/v2/pools/{quoted}", {"name": name, **settings}, params=mask)
        else:
            client.request("DELETE", f"/api/v2/pools/{quoted}")


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.sync_pools", description=__doc__.splitlines()[0])
    parser.add_argument("--pools-file", type=Path, default=POOLS_FILE)
    parser.add_argument("--dry-run", action="store_true", help="print the changes without making them")
    parser.add_argument("--prune", action="store_true", help="delete pools that the file does not declare")
    args = parser.parse_args(argv)
    try:
        desired = load_pools(args.pools_file)
        client = AirflowClient.from_environment(os.environ if environ is None else environ)
        changes = plan(desired, existing_pools(client), args.prune)
        for action, name, settings in changes:
            print(f"{'would ' if args.dry_run else ''}{action} {name} {json.dumps(settings) if settings else ''}")
        if not args.dry_run:
            apply(client, changes)
    except (PoolsFileError, ApiError) as error:
        print(f"sync_pools: {error}", file=sys.stderr)
        return 1
    print(f"{len(desired)} pools declared, {len(changes)} change(s){' planned' if args.dry_run else ''}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
