"""Point Airflow at this project before anything imports it, and share one parsed DagBag.

The DagBag is built the way the dag-processor builds it, with one difference: anything a
DAG file does at parse time that must only happen inside a task (network calls, Variable
or Connection look-ups) raises ParseTimeAccessError and becomes that file's import error.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = PROJECT_ROOT / "dags"
AIRFLOW_CFG = PROJECT_ROOT / "config" / "airflow.cfg"
POOLS_FILE = PROJECT_ROOT / "config" / "pools.json"

os.environ.update(
    {
        "AIRFLOW_CONFIG": str(AIRFLOW_CFG),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
)
# Tests never touch the developer's own Airflow home or database, nor a remote secrets backend.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-test-home-"))
os.environ.setdefault("AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH", f"file://{os.environ['AIRFLOW_HOME']}/xcom")
os.environ["AIRFLOW__SECRETS__BACKEND"] = ""


class ParseTimeAccessError(RuntimeError):
    """A DAG file did, while being parsed, what only a running task may do."""


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


def declared_pools() -> set[str]:
    return set(json.loads(POOLS_FILE.read_text()))


def pre_import_airflow_modules() -> None:
    """Import the airflow.* modules the DAG files use, once, as the dag-processor does.

    With [dag_processor] parsing_pre_import_modules (on by default) the dag-processor imports
    them before it forks the process that parses a file, so a file's parse time excludes them.
    """
    import importlib

    from airflow.utils.file import iter_airflow_imports

    for path in sorted(DAGS_FOLDER.rglob("*.py")):
        for module in iter_airflow_imports(str(path)):
            try:
                importlib.import_module(module)
            except ImportError:
                pass  # the file's own import error is reported by the DagBag


@pytest.fixture(scope="session")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    pre_import_airflow_modules()
    with forbid_parse_time_access():
        return DagBag(dag_folder=DAGS_FOLDER, known_pools=declared_pools())
