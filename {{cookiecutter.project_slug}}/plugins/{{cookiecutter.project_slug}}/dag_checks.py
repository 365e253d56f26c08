"""The checks every DAG file passes before it runs anywhere.

tests/conftest.py and deploy/validate.py both parse through here, so a deploy accepts exactly what
the test suite accepts. The DagBag is built the way the dag-processor builds it, with one
difference: anything a DAG file does at parse time that must only happen inside a task (network
calls, Variable or Connection look-ups) raises ParseTimeAccessError and becomes that file's
import error.

Airflow is imported inside the functions: call use_project_config() first, before anything
imports Airflow, so it reads this project's config and folders.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag


class ParseTimeAccessError(RuntimeError):
    """A DAG file did, while being parsed, what only a running task may do."""


def use_project_config(project_root: Path) -> None:
    """Point Airflow at the project's config, DAGs and plugins, and away from any real state."""
    os.environ.update(
        {
            "AIRFLOW_CONFIG": str(project_root / "config" / "airflow.cfg"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(project_root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(project_root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Parsing needs no secrets; a remote backend would need credentials.
            "AIRFLOW__SECRETS__BACKEND": "",
        }
    )
    # Never the developer's own Airflow home or database.
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-checks-home-"))
    os.environ.setdefault("AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH", f"file://{os.environ['AIRFLOW_HOME']}/xcom")


def _refuse(what: str):
    def refuse(*args: object, **kwargs: object) -> None:
        raise ParseTimeAccessError(f"{what} at parse time: move it inside a task")

    return refuse


@contextmanager
def forbid_parse_time_access() -> Iterator[None]:
    """Make network access and Variable/Connection reads fail loudly while DAGs parse."""
    from airflow.sdk import BaseHook, Connection, Variable

    guards = [
        (socket.socket, "connect", "network access"),
        (socket, "create_connection", "network access"),
        (socket, "getaddrinfo", "DNS lookup"),
        (Variable, "get", "Variable.get"),
        (Connection, "get", "Connection.get"),
        (BaseHook, "get_connection", "BaseHook.get_connection"),
    ]
    with ExitStack() as stack:
        for owner, attribute, what in guards:
            stack.enter_context(mock.patch.object(owner, attribute, _refuse(what)))
        yield


def declared_pools(pools_file: Path) -> set[str]:
    return set(json.loads(pools_file.read_text()))


def pre_import_airflow_modules(dags_folder: Path) -> None:
    """Import the airflow.* modules the DAG files use, once, as the dag-processor does.

    With [dag_processor] parsing_pre_import_modules (on by default) the dag-processor imports
    them before it forks the process that parses a file, so a file's parse time excludes them.
    """
    import importlib

    from airflow.utils.file import iter_airflow_imports

    for path in sorted(dags_folder.rglob("*.py")):
        for module in iter_airflow_imports(str(path)):
            try:
                importlib.import_module(module)
            except ImportError:
                pass  # the file's own import error is reported by the DagBag


def parse_dags(dags_folder: Path, pools_file: Path) -> DagBag:
    """Every DAG in the folder, parsed under the parse-time guards; pools checked against the file."""
    from airflow.dag_processing.dagbag import DagBag

    pre_import_airflow_modules(dags_folder)
    with forbid_parse_time_access():
        return DagBag(dag_folder=dags_folder, known_pools=declared_pools(pools_file))


def import_errors(dag_bag: DagBag) -> list[str]:
    """One entry per file that failed: cycles, duplicate ids and unknown executors included."""
    return [f"{path}:\n{error}" for path, error in sorted(dag_bag.import_errors.items())]


def undeclared_pools(dag_bag: DagBag) -> list[str]:
    return sorted(warning.message for warning in dag_bag.dag_warnings)


def deploy_blockers(dag_bag: DagBag) -> list[str]:
    """What must stop a deploy: a file that does not import, or a task in a pool nobody declares."""
    return import_errors(dag_bag) + [f"declare in config/pools.json: {pool}" for pool in undeclared_pools(dag_bag)]
