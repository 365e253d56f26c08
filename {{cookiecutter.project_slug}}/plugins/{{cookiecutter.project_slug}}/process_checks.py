"""Checks that run this project's code the way Airflow's own processes do, in one fresh interpreter.

fresh_interpreter_checks() starts that interpreter once and returns what it finds:
- "parse_time_imports": what each DAG file makes the dag-processor import. The dag-processor
  imports a file's own ``airflow.*`` imports once, before it forks the process that parses the
  file ([dag_processor] parsing_pre_import_modules); everything else the file pulls in is paid on
  every parse, every 30 seconds. Counting modules does not depend on how busy the machine is,
  unlike timing a parse; the time itself is measured by the template's benchmarks.
- "plugin_modules_loaded_twice": whether any module under plugins/ exists under two names after a
  worker's and the dag-processor's steps: parsing the DAGs (which import this package by name) and
  loading plugins as Airflow's plugin managers do (plugins/.airflowignore keeps them apart).
- "catchup": each DAG's catchup with [scheduler] catchup_by_default flipped against the caller's
  config, so a DAG that relies on the default shows a different value than in the caller's DagBag.

One interpreter for all three, because starting one that imports Airflow costs seconds.
It needs the project's config in the environment (dag_checks.use_project_config()).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# Libraries a DAG file must not import at parse time: each costs a noticeable part of a second,
# on every parse. Import them inside the task that needs them.
HEAVY_PACKAGES = frozenset(
    {
        "aiohttp",
        "boto3",
        "botocore",
        "google",
        "kubernetes",
        "matplotlib",
        "numpy",
        "pandas",
        "polars",
        "psycopg",
        "psycopg2",
        "pyarrow",
        "pyspark",
        "requests",
        "scipy",
        "sklearn",
        "slack_sdk",
        "snowflake",
        "tensorflow",
        "torch",
    }
)
# Modules outside Airflow one DAG file may add to a parse. The examples need well under 100.
MAX_PARSE_TIME_MODULES = 150


def fresh_interpreter_checks(dags_folder: Path) -> dict[str, Any]:
    """Parse-time imports, plugin modules loaded twice and catchup with the default flipped (see above)."""
    from airflow.configuration import conf

    plugins = str(Path(__file__).resolve().parents[1])
    code = (
        f"import json, sys\nfrom {__package__} import process_checks\n"
        "print(json.dumps(process_checks._run_checks(sys.argv[1])))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [plugins, os.environ.get("PYTHONPATH")])),
        "AIRFLOW__SCHEDULER__CATCHUP_BY_DEFAULT": str(not conf.getboolean("scheduler", "catchup_by_default")),
    }
    result = subprocess.run(
        [sys.executable, "-c", code, str(dags_folder)], env=env, capture_output=True, text=True, timeout=600
    )
    if result.returncode:
        raise RuntimeError(f"the fresh-interpreter checks failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def heavy_imports(modules: list[str]) -> list[str]:
    return sorted({module.split(".")[0] for module in modules} & HEAVY_PACKAGES)


def _run_checks(dags_folder: str) -> dict[str, Any]:
    # Parse-time imports first: each file's parse is forked from this interpreter before it has
    # imported anything of the project, as the dag-processor forks it.
    imports = _parse_time_imports(dags_folder)
    twice, catchup = _plugin_modules_loaded_twice(dags_folder)
    return {"parse_time_imports": imports, "plugin_modules_loaded_twice": twice, "catchup": catchup}


def _parse_time_imports(dags_folder: str) -> dict[str, list[str]]:
    import importlib
    import runpy

    from airflow.utils.file import iter_airflow_imports

    from .dag_checks import forbid_parse_time_access

    imports = {}
    for path in sorted(Path(dags_folder).rglob("*.py")):
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the process that parses one file, forked as the dag-processor forks it
            os.close(read)
            try:
                for module in iter_airflow_imports(str(path)):
                    try:
                        importlib.import_module(module)
                    except ImportError:
                        pass  # the file's own import error is reported by the DagBag
                before = set(sys.modules)
                with forbid_parse_time_access():
                    runpy.run_path(str(path), run_name=f"parse_probe_{path.stem}")
                new = sorted(name for name in set(sys.modules) - before if name.split(".")[0] != "airflow")
            except BaseException:
                new = []  # an import error: test_dag_integrity reports it
            with os.fdopen(write, "w") as pipe:
                json.dump(new, pipe)
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            imports[str(path.relative_to(dags_folder))] = json.load(pipe)
        os.waitpid(child, 0)
    return imports


def _plugin_modules_loaded_twice(dags_folder: str) -> tuple[dict[str, list[str]], dict[str, bool]]:
    from airflow import plugins_manager, settings
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.plugins_manager import integrate_macros_plugins

    bag = DagBag(dag_folder=dags_folder)  # the dag-processor: DAG files import the package by name
    plugins_manager.ensure_plugins_loaded()  # the scheduler, api-server and dag-processor's listeners
    integrate_macros_plugins()  # a worker, building each task's context
    plugins_folder = Path(settings.PLUGINS_FOLDER).resolve()
    names_by_file: dict[str, list[str]] = {}
    for name, module in list(sys.modules.items()):
        location = getattr(module, "__file__", None)
        if location and Path(location).resolve().is_relative_to(plugins_folder):
            relative = str(Path(location).resolve().relative_to(plugins_folder))
            names_by_file.setdefault(relative, []).append(name)
    twice = {file: sorted(names) for file, names in names_by_file.items() if len(names) > 1}
    return twice, {dag_id: dag.catchup for dag_id, dag in bag.dags.items()}
