"""plugins/task_preload.py: the processes that fork tasks import what tasks import, once, as they start."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import types
from collections import Counter

import pytest

import task_preload
from conftest import PROJECT_ROOT, airflow_cfg, configured_executors

PLUGINS_FOLDER = PROJECT_ROOT / "plugins"
PRINT_MODULES = "import json, sys; import airflow; print(json.dumps(sorted(sys.modules)))"


def modules_after_airflow_starts(command: list[str]) -> set[str]:
    """What `import airflow` leaves imported in a process started as `airflow <command>`, with this project's config."""
    program = f"import sys; sys.argv = ['airflow', *{command!r}]; {PRINT_MODULES}"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=os.environ)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_plugins_load_as_each_component_starts():
    # With lazy loading, the plugin would first be imported inside each task, which is too late.
    assert airflow_cfg()["core"]["lazy_load_plugins"] == "False"


@pytest.mark.parametrize(
    ("argv", "executors", "forks"),
    [
        (["airflow", "scheduler"], "LocalExecutor", True),
        (["airflow", "scheduler", "--num-runs", "5"], "LocalExecutor", True),
        (["airflow", "scheduler"], "CeleryExecutor,KubernetesExecutor", False),
        (["airflow", "scheduler"], "KubernetesExecutor", False),
        (["airflow", "celery", "worker", "--queues", "default"], "CeleryExecutor", True),
        (["airflow", "celery", "flower"], "CeleryExecutor", False),
        (["airflow", "api-server"], "LocalExecutor", False),
        (["airflow", "dag-processor"], "LocalExecutor", False),
        (["airflow", "triggerer"], "LocalExecutor", False),
        (["airflow", "dags", "test", "example"], "LocalExecutor", False),
        (["python", "-m", "pytest"], "LocalExecutor", False),
    ],
)
def test_only_the_processes_that_fork_tasks_preload(argv, executors, forks):
    assert task_preload.forks_tasks(argv, executors) is forks


def test_every_module_of_the_project_package_is_preloaded():
    listed = set(task_preload.project_modules(PLUGINS_FOLDER))
    on_disk = {
        ".".join(path.relative_to(PLUGINS_FOLDER).with_suffix("").parts).removesuffix(".__init__")
        for path in PLUGINS_FOLDER.glob("*/**/*.py")
    }
    assert on_disk, "no package under plugins/"
    assert listed == on_disk


def test_forgetting_a_package_drops_its_modules_and_nothing_else(monkeypatch):
    names = ["team_pkg", "team_pkg.alerts", "team_pkg.alerts.slack", "team_pkg_tools", "tools.team_pkg"]
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    task_preload.forget_packages(["team_pkg"])
    assert [name for name in names if name in sys.modules] == ["team_pkg_tools", "tools.team_pkg"]


def test_a_module_that_cannot_be_imported_is_named_and_skipped(caplog):
    with caplog.at_level(logging.WARNING, logger=task_preload.__name__):
        failed = task_preload.preload(["json", "no_such_module_for_task_preload"])
    assert failed == ["no_such_module_for_task_preload"]
    assert "no_such_module_for_task_preload" in caplog.text


def forking_command() -> list[str] | None:
    """The Airflow command whose process forks the tasks: KubernetesExecutor starts a pod per task instead."""
    executors = configured_executors()
    if "LocalExecutor" in executors:
        return ["scheduler"]
    if "CeleryExecutor" in executors:
        return ["celery", "worker"]
    return None


# Started as the forking component, the program forks a task, which loads plugins as a task does
# (running task_preload.py again) and then imports the project's modules, as its DAG file would.
# The task reports each module it had to look for (that is, each one not already in memory), by step.
FORK_A_TASK = """
import importlib, json, os, sys
project = json.loads(sys.argv[2])
sys.argv = ["airflow", *json.loads(sys.argv[1])]
import airflow
started_with = sorted(sys.modules)
read, write = os.pipe()
if os.fork() == 0:
    inherited = sorted(set(sys.modules) & set(project))
    loaded = []

    class RecordEachLoad:  # asked first for every module not yet in sys.modules; finds nothing itself
        @staticmethod
        def find_spec(name, path=None, target=None):
            loaded.append(name)

    sys.meta_path.insert(0, RecordEachLoad)
    from airflow.sdk.plugins_manager import integrate_macros_plugins
    integrate_macros_plugins()
    by_plugins, loaded[:] = loaded[:], []
    for name in project:
        importlib.import_module(name)
    # The task forks a process of its own, as multiprocessing does: does it keep the task's modules?
    modules = {name: sys.modules[name] for name in project}
    grandchild = os.fork()
    if grandchild == 0:
        os._exit(0 if all(sys.modules.get(name) is module for name, module in modules.items()) else 1)
    kept = os.waitstatus_to_exitcode(os.waitpid(grandchild, 0)[1]) == 0
    os.write(write, json.dumps([inherited, by_plugins, loaded, kept]).encode())
    os._exit(0)
os.close(write)
with os.fdopen(read) as pipe:
    inherited, by_plugins, loaded, kept = json.load(pipe)
os.wait()
print(json.dumps({"started_with": started_with, "task_inherited": inherited, "plugins_loaded": by_plugins,
                  "dag_loaded": loaded, "task_fork_kept_modules": kept}))
"""


def test_a_forked_task_reads_only_the_project_package_from_disk():
    command = forking_command()
    if command is None:
        pytest.skip("KubernetesExecutor runs each task in its own pod: no process forks tasks")
    project = task_preload.project_modules(PLUGINS_FOLDER)
    result = subprocess.run(
        [sys.executable, "-c", FORK_A_TASK, json.dumps(command), json.dumps(project)],
        capture_output=True,
        text=True,
        env=os.environ,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    # Airflow's own plugin loading, with this project's airflow.cfg, imported the task modules
    # and the package in the forking process...
    assert {*task_preload.AIRFLOW_MODULES, *project} <= set(report["started_with"])
    # ...and a forked task starts without the package, so it reads it from disk: an edit needs no restart.
    assert report["task_inherited"] == []
    # The task's own plugin loading runs task_preload.py again, which must not preload again...
    assert report["plugins_loaded"] == []
    # ...and the DAG's imports load each module of the package once, and nothing else: all that
    # the package imports was already in memory.
    assert Counter(report["dag_loaded"]) == Counter(project), report["dag_loaded"]
    # A process the task forks itself keeps the task's modules, so their objects still pickle.
    assert report["task_fork_kept_modules"] is True


def test_other_components_import_only_what_airflow_cfg_names():
    # Every component imports the XCom backend that airflow.cfg names; only the forking one preloads.
    backend = airflow_cfg()["core"]["xcom_backend"].rpartition(".")[0]
    named = {backend.partition(".")[0], backend}
    # Under LocalExecutor the scheduler is the one that forks, so the api-server stands for the rest.
    other = ["api-server"] if forking_command() == ["scheduler"] else ["scheduler"]
    project_modules = set(task_preload.project_modules(PLUGINS_FOLDER))
    assert project_modules - named, "nothing left to tell a preload apart"
    assert project_modules & modules_after_airflow_starts(other) <= named


def test_make_run_preloads_as_a_deployment_does():
    # The preload keeps edits in plugins/ live, so make run has no reason to turn it off.
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "LAZY_LOAD_PLUGINS" not in makefile
