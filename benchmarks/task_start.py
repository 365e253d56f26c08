"""What a task's start-up costs with and without plugins/task_preload.py, per example DAG file.

    PYENV_VERSION=... .cache/tools/bin/python benchmarks/task_start.py [--forks 7]

It bakes the Celery variant (the examples included) and, in its venv, starts a parent process
as `airflow scheduler` (LocalExecutor) or `airflow celery worker` would start: the project's
airflow.cfg, plugins loaded lazily (Airflow's default) or at start (the template's
`lazy_load_plugins = False`, under which task_preload.py preloads and each process the parent
forks drops the project's own package), and for Celery also Airflow's own pre-import of operators
(`on_celery_import_modules`). A third setting keeps the package loaded as well, which shows
what reading it from disk in each task costs. The parent then forks one child per
measurement, which does what a task does before it runs: load plugins and parse its DAG file
(task_runner.parse). Each child reports its own CPU time, which load from other work does not
inflate. Prints a Markdown table of medians in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TEMPLATE_DIR / "tests"))
from helpers import VARIANTS, BakedProject, bake, project_venv  # noqa: E402

CHILD = r"""
import gc, json, os, statistics, sys, time
sys.argv = ["airflow", *json.loads(os.environ["BENCH_COMMAND"])]
import airflow
from airflow.sdk.execution_time import supervisor  # the forking process has it after its first task
if sys.argv[1] == "celery":
    from airflow.providers.celery.executors.celery_executor_utils import on_celery_import_modules
    on_celery_import_modules()
if os.environ["BENCH_KEEP_PACKAGE"] == "True":  # the first preload: no forgetting in forked processes
    import task_preload
    from pathlib import Path
    package = task_preload.project_modules(Path(task_preload.__file__).parent)
    task_preload.preload([*task_preload.AIRFLOW_MODULES, *package])
gc.freeze()
results = {}
for path in json.loads(os.environ["BENCH_FILES"]):
    samples = []
    for _ in range(int(os.environ["BENCH_FORKS"])):
        read, write = os.pipe()
        if os.fork() == 0:
            os.close(read)
            start = time.process_time()
            from airflow.dag_processing.dagbag import BundleDagBag
            from airflow.sdk.plugins_manager import integrate_macros_plugins
            integrate_macros_plugins()
            bag = BundleDagBag(dag_folder=path, safe_mode=False, load_op_links=False,
                               bundle_path=os.path.dirname(path), bundle_name="dags-folder")
            ok = bool(bag.dags) and not bag.import_errors
            os.write(write, json.dumps([ok, (time.process_time() - start) * 1000]).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            ok, ms = json.loads(pipe.read())
        os.wait()
        assert ok, f"{path} did not parse"
        samples.append(ms)
    results[os.path.basename(path)] = statistics.median(samples)
print(json.dumps(results))
"""

PARENTS = {
    "LocalExecutor worker": (["scheduler"], "LocalExecutor"),
    "Celery pool process": (["celery", "worker"], "CeleryExecutor"),
}


# label -> (plugins loaded at start, the project's package kept loaded)
SETTINGS = {
    "lazy plugins": (False, False),
    "preloaded": (True, False),
    "preloaded, package kept": (True, True),
}


def measure(project: BakedProject, python: Path, command: list[str], executor: str, setting: str, forks: int):
    preload, keep_package = SETTINGS[setting]
    files = sorted(str(path) for path in (project.path / "dags").glob("*.py"))
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW_CONFIG": str(project.path / "config" / "airflow.cfg"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(project.path / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(project.path / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": str(not preload),
            "AIRFLOW__SECRETS__BACKEND": "",
            "BENCH_COMMAND": json.dumps(command),
            "BENCH_FILES": json.dumps(files),
            "BENCH_FORKS": str(forks),
            "BENCH_KEEP_PACKAGE": str(keep_package),
            # With the package kept, task_preload.py itself stands aside (as in a task) and the
            # parent preloads without registering the forget-at-fork.
            **({"AIRFLOW_TASK_PRELOAD_PID": "0"} if keep_package else {}),
        }
        result = subprocess.run(
            [str(python), "-c", CHILD], cwd=project.path, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode:
            raise SystemExit(result.stderr[-3000:])
        return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--forks", type=int, default=7, help="children (tasks) per DAG file and setting")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = BakedProject(bake(Path(scratch), **VARIANTS["celery"]), VARIANTS["celery"])
        python = project_venv(project) / "bin" / "python"
        columns = {}
        for parent, (command, executor) in PARENTS.items():
            for setting in SETTINGS:
                columns[f"{parent}, {setting}"] = measure(project, python, command, executor, setting, args.forks)
    files = sorted(next(iter(columns.values())))
    print(f"| DAG file (CPU ms before the task runs, median of {args.forks}) | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name in files:
        print(f"| {name} | " + " | ".join(f"{column[name]:.0f}" for column in columns.values()) + " |")


if __name__ == "__main__":
    main()
