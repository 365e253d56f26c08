"""Import what tasks import once, in the process that forks them, instead of once per task.

Airflow 3 runs each task in a process forked from a long-lived one: a LocalExecutor worker,
itself forked from the scheduler, or a Celery worker's pool process. Before it runs, the task
re-imports its DAG file, and with it the task SDK, the operators, the libraries this project
uses and this project's package, unless the process it was forked from had already imported
them. Those imports were most of a short task's CPU time in the template's profile (its
docs/benchmarks.md).

With `[core] lazy_load_plugins = False` (config/airflow.cfg), `airflow scheduler` and `airflow
celery worker` import this file as they start, before they fork. It imports Airflow's task
modules and every module of the packages under plugins/, with all they import. Each process
they fork (a LocalExecutor worker, a Celery pool process) then drops the packages' own modules
first thing, so each task, forked in turn from one of those, imports them afresh from disk, a
few milliseconds, and an edit in plugins/ reaches the next task without a restart, while
Airflow, the providers and the libraries stay loaded. Every other Airflow process, and any
process with lazy plugin loading, imports nothing here. A module that fails to import is logged
and skipped: the task that needs it reports the error itself.

On macOS, Airflow starts workers and tasks as fresh interpreters (fork is not safe there): they
inherit nothing, so the preload only adds to the start of the process that ran it.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import sys
from functools import partial
from pathlib import Path

from airflow import settings
from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

# Set by the process that preloaded. Its forked tasks inherit it, and skip the preload when
# Airflow's plugin loader runs this file again inside each task.
PRELOADED_BY = "AIRFLOW_TASK_PRELOAD_PID"

# What every task imports, whatever its DAG: the task SDK, the runner that parses the DAG file,
# and TaskFlow's @task.
AIRFLOW_MODULES = (
    "airflow.sdk",
    "airflow.sdk.execution_time.task_runner",
    "airflow.dag_processing.dagbag",
    "airflow.providers.standard.decorators.python",
)


def forks_tasks(argv: list[str], executors: str) -> bool:
    """Whether this command's process forks task processes: a LocalExecutor scheduler or a Celery worker."""
    command = [word for word in argv[1:] if not word.startswith("-")][:2]
    if command == ["celery", "worker"]:
        return True
    return command[:1] == ["scheduler"] and "LocalExecutor" in executors


def project_packages(plugins_folder: Path) -> list[str]:
    """The packages in plugins/: the code DAG files import."""
    return [module.name for module in pkgutil.iter_modules([str(plugins_folder)]) if module.ispkg]


def project_modules(plugins_folder: Path) -> list[str]:
    """Every module of every package in plugins/."""
    names = []
    for package in project_packages(plugins_folder):
        path = [str(plugins_folder / package)]
        names += [package, *(module.name for module in pkgutil.walk_packages(path, prefix=f"{package}."))]
    return names


def preload(names: list[str]) -> list[str]:
    """Import each module; return the ones that failed, after logging why."""
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            log.warning("task_preload: could not import %s; tasks will import it themselves", name, exc_info=True)
            failed.append(name)
    return failed


def forget_packages(packages: list[str]) -> None:
    """Drop every module of these packages from sys.modules, so that the next import reads it from disk."""
    prefixes = tuple(f"{package}." for package in packages)
    for name in [name for name in sys.modules if name in packages or name.startswith(prefixes)]:
        del sys.modules[name]


def forget_packages_if_forked_by(preloader_pid: int, packages: list[str]) -> None:
    """Run in every forked process: drop the packages only in one that the preloading process forked.

    A process a task forks itself (multiprocessing, a process pool) keeps what the task imported,
    so that its objects still pickle and match the parent's classes.
    """
    if os.getppid() == preloader_pid:
        forget_packages(packages)


class TaskPreloadPlugin(AirflowPlugin):
    """Listed by `airflow plugins`, so a team can see the preload is active."""

    name = "task_preload"


if (
    not settings.LAZY_LOAD_PLUGINS
    and PRELOADED_BY not in os.environ
    and forks_tasks(sys.argv, conf.get("core", "executor"))
):
    plugins_folder = Path(__file__).parent
    preload([*AIRFLOW_MODULES, *project_modules(plugins_folder)])
    # This process keeps the packages; each process it forks drops them, along with any module of
    # theirs imported here after the preload. Objects Airflow already holds stay as loaded here:
    # the task runner's XCom class, from the xcom_backend module that airflow.cfg names.
    forget = partial(forget_packages_if_forked_by, os.getpid(), project_packages(plugins_folder))
    os.register_at_fork(after_in_child=forget)
    os.environ[PRELOADED_BY] = str(os.getpid())
