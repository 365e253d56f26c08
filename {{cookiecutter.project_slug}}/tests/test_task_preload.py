"""plugins/task_preload.py: the processes that fork tasks import what tasks import, once, as they start."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

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


def test_the_process_that_forks_tasks_starts_with_them_imported():
    # Airflow's own plugin loading, with this project's airflow.cfg.
    command = forking_command()
    if command is None:
        pytest.skip("KubernetesExecutor runs each task in its own pod: no process forks tasks")
    expected = {*task_preload.AIRFLOW_MODULES, *task_preload.project_modules(PLUGINS_FOLDER)}
    assert expected <= modules_after_airflow_starts(command)


def test_other_components_import_only_what_airflow_cfg_names():
    # Every component imports the XCom backend that airflow.cfg names; only the forking one preloads.
    backend = airflow_cfg()["core"]["xcom_backend"].rpartition(".")[0]
    named = {backend.partition(".")[0], backend}
    # Under LocalExecutor the scheduler is the one that forks, so the api-server stands for the rest.
    other = ["api-server"] if forking_command() == ["scheduler"] else ["scheduler"]
    project_modules = set(task_preload.project_modules(PLUGINS_FOLDER))
    assert project_modules - named, "nothing left to tell a preload apart"
    assert project_modules & modules_after_airflow_starts(other) <= named


def test_make_run_imports_plugins_in_each_task():
    # So that an edit in plugins/ reaches the next task without restarting make run.
    makefile = (PROJECT_ROOT / "Makefile").read_text().splitlines()
    local_profile = " ".join(line for line in makefile if line.startswith("LOCAL "))
    assert "AIRFLOW__CORE__LAZY_LOAD_PLUGINS=True" in local_profile.split()
