"""Pools and connections the old code names, against what this project declares.

Declared pools are the keys of this project's `config/pools.json` (plus `default_pool`, which
every Airflow has). Declared connections come from `declared_connection_ids()`, the one place
that decides it. A name is found two ways: as a literal in the source (`pool="etl"`,
`postgres_conn_id="dwh"`, `"pool": "etl"` in default_args, `get_connection("dwh")`), and from the
tasks of every DAG that parsed (which also catches names set through variables and defaults).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from scripts.upgrade_check.patterns import call_name

# Names in .env files that hold a connection: AIRFLOW_CONN_<ID>, which Airflow reads as id <id>.
CONNECTION_VARIABLE = re.compile(r"^\s*(?:export\s+)?AIRFLOW_CONN_([A-Z0-9_]+)\s*=", re.MULTILINE)
# The files in this project that may name connections for local runs: the documented names
# (.env.example, tracked) and this checkout's own (.env, git-ignored; only the names are read).
CONNECTION_FILES = (".env.example", ".env")


def declared_pools(project: Path) -> set[str]:
    """The pools config/pools.json declares, and the default pool every Airflow has."""
    return set(json.loads((project / "config" / "pools.json").read_text())) | {"default_pool"}


def declared_connection_ids(project: Path) -> set[str]:
    """Connection ids this project gives a value for local runs: AIRFLOW_CONN_<ID> in .env.example or .env.

    Production connections live in the secrets backend, which this check cannot read: an id that
    is not declared here is a to-do (create it there and here), not an error in the code.
    """
    declared = set()
    for name in CONNECTION_FILES:
        path = project / name
        if path.is_file():
            declared |= {match.lower() for match in CONNECTION_VARIABLE.findall(path.read_text())}
    return declared


def literal(node: ast.expr | None) -> str | None:
    """A plain string value; None for anything computed or templated."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and "{" not in node.value and node.value:
        return node.value
    return None


def is_connection_key(name: str | None) -> bool:
    return bool(name) and (name == "conn_id" or name.endswith("_conn_id"))


def source_references(tree: ast.Module) -> tuple[dict[str, int], dict[str, int]]:
    """(pool -> first line, connection id -> first line) named as literals in the file."""
    pools: dict[str, int] = {}
    connections: dict[str, int] = {}
    for node in ast.walk(tree):
        pairs: list[tuple[str | None, ast.expr | None, int]] = []
        if isinstance(node, ast.Call):
            pairs += [(keyword.arg, keyword.value, keyword.value.lineno) for keyword in node.keywords]
            name = call_name(node.func)
            if node.args and (name.endswith("get_connection") or name == "Connection.get"):
                pairs.append(("conn_id", node.args[0], node.lineno))
        elif isinstance(node, ast.Dict):
            pairs += [
                (key.value, value, key.lineno)
                for key, value in zip(node.keys, node.values, strict=True)
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            ]
        for key, value, line in pairs:
            if (value_text := literal(value)) is None:
                continue
            if key == "pool":
                pools.setdefault(value_text, line)
            elif is_connection_key(key):
                connections.setdefault(value_text, line)
    return pools, connections


def undeclared(used: dict[str, dict[str, int]], declared: set[str]) -> dict[str, dict[str, int]]:
    """{name: {file: line}} for the names nobody declared; line 0 means found only at parse time."""
    return {name: files for name, files in sorted(used.items()) if name not in declared}
