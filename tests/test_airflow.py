"""Airflow tier: each variant's own pinned install runs a real Airflow 3.3.2.

Each distinct requirements set is installed once into a cached venv (tests/helpers.py).
The baked project's DagBag must hold exactly the expected DAGs, its own test suite must
pass, and the rules that suite enforces must fail when broken.
"""

from __future__ import annotations

import configparser
import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import PROBES, VARIANTS, BakedProject, airflow_env, project_venv, run

pytestmark = pytest.mark.airflow

INSTALLED_VARIANTS = sorted(VARIANTS)
EXAMPLE_DAG_IDS = {
    "example_api_ingest",
    "example_deferrable_sensor",
    "example_dynamic_mapping",
    "example_incremental_load",
    "example_large_xcom",
    "example_quality_gate",
    "example_safe_taskflow",
    "tenant_acme",
    "tenant_globex",
    "tenant_initech",
}
CONFIGURED_EXECUTORS = {
    "LocalExecutor": ["LocalExecutor"],
    "CeleryExecutor": ["CeleryExecutor"],
    "KubernetesExecutor": ["KubernetesExecutor"],
    "CeleryKubernetesExecutor": ["CeleryExecutor", "KubernetesExecutor"],
}


def expected_dag_ids(project: BakedProject) -> set[str]:
    if not project.answer("include_examples"):
        return set()
    if project.answer("executor") == "CeleryKubernetesExecutor":
        return EXAMPLE_DAG_IDS | {"example_kubernetes_offload"}
    return EXAMPLE_DAG_IDS


def run_project_suite(project: BakedProject, venv: Path, report: Path, check: bool = True, tests: tuple[str, ...] = ()):
    """Run the baked project's own pytest (or just `tests`) with its own venv; return {test id: outcome}."""
    result = run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", *tests],
        cwd=project.path,
        env=airflow_env(project.path, venv, report.parent / "airflow-home"),
        check=check,
    )
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        test_id = f"{case.get('classname').rsplit('.', 1)[-1]}::{case.get('name')}"
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        outcomes[test_id] = "passed" if failure is None else failure.get("message", "") + (failure.text or "")
    return result, outcomes


@pytest.mark.parametrize("variant", INSTALLED_VARIANTS)
def test_dagbag_holds_the_expected_dags_and_executors(baked, variant, tmp_path):
    project = baked(variant)
    venv = project_venv(project)
    result = run(
        [str(venv / "bin" / "python"), str(PROBES / "dagbag_summary.py"), str(project.path / "dags")],
        cwd=project.path,
        env=airflow_env(project.path, venv, tmp_path / "airflow-home"),
    )
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["import_errors"] == {}
    assert set(parsed["dag_ids"]) == expected_dag_ids(project)
    assert parsed["executors"] == CONFIGURED_EXECUTORS[project.answer("executor")]
    assert parsed["load_examples"] is False


@pytest.mark.parametrize("variant", INSTALLED_VARIANTS)
def test_project_suite_passes(baked, variant, tmp_path):
    project = baked(variant)
    _, outcomes = run_project_suite(project, project_venv(project), tmp_path / "report.xml")
    failed = {test: outcome for test, outcome in outcomes.items() if outcome != "passed"}
    assert not failed
    # The config checks the template promises run inside the project's own suite.
    assert {
        "test_config::test_config_lint_finds_nothing_moved_or_removed",
        "test_config::test_every_option_is_one_airflow_knows",
        "test_config::test_configured_executors_load",
        "test_config::test_no_secrets_in_config",
        "test_dag_integrity::test_no_import_errors",
    } <= set(outcomes)


BROKEN_DAGS = {
    "broken_import.py": """
        import this_module_does_not_exist  # noqa: F401
        from airflow.sdk import DAG  # noqa: F401
        """,
    "broken_cycle.py": """
        import pendulum
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG

        with DAG("broken_cycle", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
                 default_args={"owner": "team", "retries": 1}, tags=["t"]):
            first = EmptyOperator(task_id="first")
            second = EmptyOperator(task_id="second")
            first >> second >> first
        """,
    "broken_duplicate.py": """
        from airflow.sdk import DAG

        dag = DAG("example_safe_taskflow", schedule=None, catchup=False, default_args={"owner": "t", "retries": 1},
                  tags=["t"])
        """,
    "broken_policy.py": """
        import pendulum
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG

        with DAG("broken_policy", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
            EmptyOperator(task_id="unowned", pool="pool_nobody_declared")
        """,
    "broken_executor.py": """
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG

        with DAG("broken_executor", schedule=None, catchup=False, default_args={"owner": "t", "retries": 1},
                 tags=["t"]):
            EmptyOperator(task_id="elsewhere", executor="KubernetesExecutor")
        """,
    "broken_variable.py": """
        from airflow.sdk import DAG, Variable

        dag = DAG("broken_variable", schedule=Variable.get("schedule"), catchup=False)
        """,
    "broken_network.py": """
        import socket

        from airflow.sdk import DAG

        socket.create_connection(("127.0.0.1", 9), timeout=1)
        dag = DAG("broken_network", schedule=None, catchup=False)
        """,
    "broken_heavy.py": """
        import requests  # noqa: F401
        from airflow.sdk import DAG

        dag = DAG("broken_heavy", schedule=None, catchup=False, default_args={"owner": "t", "retries": 1}, tags=["t"])
        """,
    "broken_logical_date.py": """
        from airflow.providers.standard.operators.python import PythonOperator
        from airflow.sdk import DAG, task

        with DAG("broken_logical_date", schedule=None, catchup=False, default_args={"owner": "t", "retries": 1},
                 tags=["t"]):
            PythonOperator(task_id="templated", python_callable=print, op_kwargs={"day": "{{ ds_nodash }}"})

            @task
            def by_argument(data_interval_start=None):
                print(data_interval_start)

            @task
            def by_key(**context):
                print(context["logical_date"])

            by_argument()
            by_key()
        """,
}

# test id -> what its failure message must name
EXPECTED_FAILURES = {
    "test_dag_integrity::test_no_import_errors": [
        "broken_import.py",
        "this_module_does_not_exist",
        "broken_cycle.py",
        "Cycle detected",
        "broken_duplicate.py",
        "AirflowDagDuplicatedIdException",
        "broken_executor.py",
    ],
    "test_dag_policy::test_every_dag_has_owner_retries_and_tags": [
        "broken_policy: default_args has no owner",
        "broken_policy: default_args sets no retries",
        "broken_policy: no tags",
    ],
    "test_dag_policy::test_every_dag_sets_catchup_explicitly": ["broken_policy"],
    "test_dag_policy::test_every_pool_is_declared_in_pools_json": ["pool_nobody_declared"],
    "test_dag_policy::test_every_executor_named_is_configured": ["broken_executor.py", "KubernetesExecutor"],
    "test_dag_policy::test_no_dag_file_reads_config_or_network_at_parse_time": [
        "broken_variable.py: ",
        "Variable.get at parse time",
        "broken_network.py: ",
        "network access at parse time",
    ],
    "test_dag_policy::test_no_dag_file_imports_a_heavy_library_at_parse_time": [
        "dags/broken_heavy.py imports requests at parse time"
    ],
    "test_dag_policy::test_no_task_needs_a_logical_date": [
        "a run without a logical date has none",
        "broken_logical_date.templated: template field 'op_kwargs' uses ['ds_nodash']",
        "broken_logical_date.by_argument: its callable reads ['data_interval_start']",
        "broken_logical_date.by_key: its callable reads ['logical_date']",
    ],
}


def test_project_suite_fails_on_each_broken_rule(baked, tmp_path):
    project = baked("local").copy_to(tmp_path)
    for name, source in BROKEN_DAGS.items():
        (project.path / "dags" / name).write_text(textwrap.dedent(source).lstrip())
    # The two modules that hold the DAG rules; test_project_suite_passes runs the whole suite.
    modules = ("tests/test_dag_integrity.py", "tests/test_dag_policy.py")
    result, outcomes = run_project_suite(
        project, project_venv(project), tmp_path / "report.xml", check=False, tests=modules
    )
    assert result.returncode == 1
    failed = {test for test, outcome in outcomes.items() if outcome != "passed"}
    assert failed == set(EXPECTED_FAILURES), result.stdout[-4000:]
    for test, fragments in EXPECTED_FAILURES.items():
        missing = [fragment for fragment in fragments if fragment not in outcomes[test]]
        assert not missing, f"{test} does not mention {missing}:\n{outcomes[test]}"


def test_project_suite_fails_when_a_plugin_module_loads_twice(baked, tmp_path):
    # Without plugins/.airflowignore, Airflow's plugin managers import each module of the package a
    # second time, as a top-level module, in the same process that imported it for the DAGs.
    project = baked("local").copy_to(tmp_path)
    (project.path / "plugins" / ".airflowignore").unlink()
    test = "tests/test_dag_policy.py::test_each_plugin_module_is_loaded_once"
    result, outcomes = run_project_suite(
        project, project_venv(project), tmp_path / "report.xml", check=False, tests=(test,)
    )
    assert result.returncode == 1
    failure = outcomes["test_dag_policy::test_each_plugin_module_is_loaded_once"]
    slug = project.slug
    assert "loaded under two names" in failure
    assert f'"{slug}/alerting.py": ["alerting", "{slug}.alerting"]' in failure, failure[-3000:]


BROKEN_CONFIG = {
    ("scheduler", "max_threads"): "4",  # moved to [dag_processor] parsing_processes in Airflow 3
    ("core", "paralelism"): "8",  # a typo Airflow would silently ignore
    ("core", "fernet_key"): "a-secret-that-must-not-be-committed",
    ("logging", "base_log_folder"): "/home/someone/airflow/logs",
}


def test_project_suite_fails_on_a_broken_config(baked, tmp_path):
    project = baked("local").copy_to(tmp_path)
    cfg_path = project.path / "config" / "airflow.cfg"
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(cfg_path)
    for (section, option), value in BROKEN_CONFIG.items():
        if not cfg.has_section(section):
            cfg.add_section(section)
        cfg.set(section, option, value)
    with cfg_path.open("w") as handle:
        cfg.write(handle)
    result, outcomes = run_project_suite(
        project, project_venv(project), tmp_path / "report.xml", check=False, tests=("tests/test_config.py",)
    )
    assert result.returncode == 1
    expected = {
        "test_config::test_config_lint_finds_nothing_moved_or_removed": "max_threads",
        "test_config::test_every_option_is_one_airflow_knows": "[core] paralelism",
        "test_config::test_no_secrets_in_config": "[core] fernet_key",
        "test_config::test_no_machine_specific_paths": "[logging] base_log_folder",
    }
    failed = {test for test, outcome in outcomes.items() if outcome != "passed"}
    assert failed == set(expected), result.stdout[-4000:]
    for test, fragment in expected.items():
        assert fragment in outcomes[test]
