#!/usr/bin/env python3
"""Make the pools of a running Airflow match config/pools.json, through the REST API v2.

    AIRFLOW_API_URL=https://airflow.example.com AIRFLOW_API_USERNAME=... AIRFLOW_API_PASSWORD=... \\
        scripts/sync_pools.py [--dry-run] [--prune]

Idempotent: a second run changes nothing. Pools missing from the file are kept unless
--prune is given (default_pool is never deleted). Credentials come only from the
environment: AIRFLOW_API_TOKEN, or AIRFLOW_API_USERNAME and AIRFLOW_API_PASSWORD, which are
exchanged for a JWT at /auth/token. Neither is ever printed. Standard library only, so it
runs on any CI runner without Airflow installed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

POOLS_FILE = Path(__file__).resolve().parents[1] / "config" / "pools.json"
FIELDS = ("slots", "description", "include_deferred")
# The API changes only these on default_pool; its description stays Airflow's.
DEFAULT_POOL_FIELDS = ("slots", "include_deferred")


class SyncError(Exception):
    """A problem the operator must fix; the message says which."""


def load_pools(path: Path) -> dict[str, dict]:
    """The desired pools, validated: every problem is reported before the API is touched."""
    try:
        pools = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SyncError(f"cannot read {path}: {error}") from None
    if not isinstance(pools, dict) or not pools:
        raise SyncError(f"{path} must be a JSON object of pool name -> settings")
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
        raise SyncError(f"{path} is invalid:\n  " + "\n  ".join(problems))
    return {
        name: {"slots": pool["slots"], "description": pool.get("description", ""), "include_deferred": False}
        | {key: pool[key] for key in FIELDS if key in pool}
        for name, pool in pools.items()
    }


class AirflowApi:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    @classmethod
    def from_environment(cls, environ: dict[str, str]) -> AirflowApi:
        base_url = environ.get("AIRFLOW_API_URL", "").rstrip("/")
        if not base_url:
            raise SyncError("set AIRFLOW_API_URL, e.g. http://localhost:8080")
        if token := environ.get("AIRFLOW_API_TOKEN"):
            return cls(base_url, token)
        username, password = environ.get("AIRFLOW_API_USERNAME"), environ.get("AIRFLOW_API_PASSWORD")
        if not (username and password):
            raise SyncError("set AIRFLOW_API_TOKEN, or AIRFLOW_API_USERNAME and AIRFLOW_API_PASSWORD")
        answer = cls(base_url, "").request("POST", "/auth/token", {"username": username, "password": password})
        return cls(base_url, answer["access_token"])

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise SyncError(f"{method} {path} failed: HTTP {error.code} {detail}") from None
        except urllib.error.URLError as error:
            raise SyncError(f"cannot reach {self.base_url}: {error.reason}") from None
        return json.loads(payload) if payload else {}

    def pools(self) -> dict[str, dict]:
        existing, offset = {}, 0
        while True:
            page = self.request("GET", f"/api/v2/pools?limit=100&offset={offset}")
            for pool in page["pools"]:
                existing[pool["name"]] = {key: pool.get(key) for key in FIELDS} | {
                    "description": pool.get("description") or ""
                }
            offset += len(page["pools"])
            if not page["pools"] or offset >= page["total_entries"]:
                return existing


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


def apply(api: AirflowApi, changes: list[tuple[str, str, dict]]) -> None:
    for action, name, settings in changes:
        quoted = urllib.parse.quote(name, safe="")
        if action == "create":
            api.request("POST", "/api/v2/pools", {"name": name, **settings})
        elif action == "update":
            # A PATCH of default_pool is refused unless its update_mask names only the fields it may change.
            mask = urllib.parse.urlencode({"update_mask": DEFAULT_POOL_FIELDS}, doseq=True)
            path = f"/api/v2/pools/{quoted}" + (f"?{mask}" if name == "default_pool" else "")
            api.request("PATCH", path, {"name": name, **settings})
        else:
            api.request("DELETE", f"/api/v2/pools/{quoted}")


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools-file", type=Path, default=POOLS_FILE)
    parser.add_argument("--dry-run", action="store_true", help="print the changes without making them")
    parser.add_argument("--prune", action="store_true", help="delete pools that the file does not declare")
    args = parser.parse_args(argv)
    try:
        desired = load_pools(args.pools_file)
        api = AirflowApi.from_environment(dict(os.environ if environ is None else environ))
        changes = plan(desired, api.pools(), args.prune)
        for action, name, settings in changes:
            print(f"{'would ' if args.dry_run else ''}{action} {name} {json.dumps(settings) if settings else ''}")
        if not args.dry_run:
            apply(api, changes)
    except SyncError as error:
        print(f"sync_pools: {error}", file=sys.stderr)
        return 1
    print(f"{len(desired)} pools declared, {len(changes)} change(s){' planned' if args.dry_run else ''}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
