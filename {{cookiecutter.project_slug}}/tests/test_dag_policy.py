"""House rules every DAG in this project follows; each failure names the DAG and the fix."""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
from jinja2 import meta

from {{ cookiecutter.project_slug }} import process_checks

# Not imported from conftest: where it sorts among first-party imports depends on the project name.
DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"
# Context keys a run without a logical date does not have: the Task SDK sets them only when the run
# has one. Such runs are everyday in Airflow 3 (triggered with the date cleared, or by an asset).
LOGICAL_DATE_KEYS = frozenset(
    {
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "logical_date",
        "data_interval_start",
        "data_interval_end",
        "prev_data_interval_start_success",
        "prev_data_interval_end_success",
    }
)
RUN_DATES_HINT = (
    "a run without a logical date has none: use dag_run.logical_date or dag_run.run_after in templates, "
    "and run_dates.run_date(dag_run) or run_dates.data_window(dag_run) in tasks (dags/README.md)"
)


def test_every_dag_has_owner_retries_and_tags(dag_bag):
    problems = []
    for dag_id, dag in sorted(dag_bag.dags.items()):
        if not dag.default_args.get("owner"):
            problems.append(f"{dag_id}: default_args has no owner")
        if not dag.default_args.get("retries"):
            problems.append(f"{dag_id}: default_args sets no retries")
        if not dag.tags:
            problems.append(f"{dag_id}: no tags")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def fresh_checks() -> dict[str, Any]:
    # One interpreter that imports Airflow afresh, as its processes do, for the three checks below.
    return process_checks.fresh_interpreter_checks(DAGS_FOLDER)


def test_every_dag_sets_catchup_explicitly(dag_bag, fresh_checks):
    # A DAG that sets catchup keeps its value when the global default flips; one that
    # relies on [scheduler] catchup_by_default follows it.
    flipped = fresh_checks["catchup"]
    implicit = sorted(
        dag_id for dag_id, dag in dag_bag.dags.items() if dag_id in flipped and flipped[dag_id] != dag.catchup
    )
    assert not implicit, f"set catchup=True or catchup=False explicitly on: {implicit}"


def test_every_pool_is_declared_in_pools_json(dag_bag):
    warnings = sorted(warning.message for warning in dag_bag.dag_warnings)
    assert not warnings, "declare these pools in config/pools.json:\n" + "\n".join(warnings)


def test_every_executor_named_is_configured(dag_bag):
    unknown = sorted(
        f"{path}: {error}" for path, error in dag_bag.import_errors.items() if "UnknownExecutorException" in error
    )
    assert not unknown, "add the executor to [core] executor in config/airflow.cfg:\n" + "\n".join(unknown)


def test_no_dag_file_reads_config_or_network_at_parse_time(dag_bag):
    offenders = sorted(
        f"{path}: {error.strip().splitlines()[-1]}"
        for path, error in dag_bag.import_errors.items()
        if "ParseTimeAccessError" in error
    )
    assert not offenders, "\n".join(offenders)


def test_no_dag_file_imports_a_heavy_library_at_parse_time(fresh_checks):
    # The dag-processor re-parses every file every 30 s. What a parse imports is the same on an idle
    # laptop and a busy CI runner, unlike how long it takes (that is for the template's benchmarks).
    problems = []
    for file, modules in sorted(fresh_checks["parse_time_imports"].items()):
        if heavy := process_checks.heavy_imports(modules):
            problems.append(f"dags/{file} imports {', '.join(heavy)} at parse time: import it inside the task")
        elif len(modules) > process_checks.MAX_PARSE_TIME_MODULES:
            packages = sorted({module.split(".")[0] for module in modules})
            problems.append(
                f"dags/{file} imports {len(modules)} modules outside Airflow at parse time (at most "
                f"{process_checks.MAX_PARSE_TIME_MODULES}), from {packages}: move imports inside tasks"
            )
    assert not problems, "\n".join(problems)


def test_each_plugin_module_is_loaded_once(fresh_checks):
    # Airflow's plugin managers import every .py file under plugins/ as a top-level module unless
    # plugins/.airflowignore says otherwise; DAGs import the package by name. Twice means two copies.
    twice = fresh_checks["plugin_modules_loaded_twice"]
    assert not twice, "loaded under two names (list its folder in plugins/.airflowignore): " + json.dumps(twice)


def template_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from template_strings(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from template_strings(item)


def template_source(task: Any, text: str) -> str:
    """The template itself: a value naming a file (e.g. ``queries/load.sql``) stands for its contents."""
    if not text.endswith(tuple(task.template_ext)):
        return text
    environment = task.dag.get_template_env()
    try:
        return environment.loader.get_source(environment, text)[0]
    except jinja2.TemplateNotFound:
        return text


def keys_in_templates(task: Any) -> dict[str, set[str]]:
    """Per template field, the logical-date-only context keys its Jinja names."""
    # The DAG's own environment knows Airflow's filters (ds, ts, ...) and any the DAG adds.
    environment = task.dag.get_template_env()
    found = {}
    fields = task.partial_kwargs if hasattr(task, "partial_kwargs") else vars(task)
    for field in task.template_fields:
        names = set()
        for text in template_strings(fields.get(field)):
            parsed = environment.parse(template_source(task, text))
            names |= meta.find_undeclared_variables(parsed) & LOGICAL_DATE_KEYS
        if names:
            found[field] = names
    return found


def keys_in_callable(task: Any) -> set[str]:
    """The logical-date-only context keys a task's Python callable asks for, by argument or by key."""
    function = getattr(task, "python_callable", None) or getattr(task, "partial_kwargs", {}).get("python_callable")
    if function is None:
        return set()
    try:
        names = set(inspect.signature(function).parameters) & LOGICAL_DATE_KEYS
    except (TypeError, ValueError):
        return set()  # a builtin without a signature: nothing to read
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return names
    for node in ast.walk(tree):
        # context["ds"], context.get("logical_date"), kwargs["data_interval_end"] ...
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get" and node.args:
            key = getattr(node.args[0], "value", None)
        else:
            continue
        if key in LOGICAL_DATE_KEYS:
            names.add(key)
    return names


def test_no_task_needs_a_logical_date(dag_bag):
    problems = []
    for dag_id, dag in sorted(dag_bag.dags.items()):
        for task in dag.tasks:
            for field, names in sorted(keys_in_templates(task).items()):
                problems.append(f"{dag_id}.{task.task_id}: template field {field!r} uses {sorted(names)}")
            if names := keys_in_callable(task):
                problems.append(f"{dag_id}.{task.task_id}: its callable reads {sorted(names)}")
    assert not problems, f"{RUN_DATES_HINT}:\n" + "\n".join(problems)
