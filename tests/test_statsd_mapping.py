"""The statsd_exporter mapping: the rules read only series it produces, it translates StatsD lines as the
exporter does, and it agrees with `[metrics] metrics_allow_list` and Airflow's own metrics registry."""

from __future__ import annotations

import os

import pytest
from helpers import PROBES, last_json_line, project_venv, run
from monitoring import mappings, rule_series, translate


def test_rules_read_only_series_the_statsd_mapping_produces(baked):
    project = baked("local")
    produced = {series for rule in mappings(project) for series in rule.series()}
    assert rule_series(project) <= produced, rule_series(project) - produced
    assert mappings(project)[-1].drop and mappings(project)[-1].match == ".", "unmapped metrics must be dropped"


def test_the_translation_follows_the_mapping(baked):
    rules = mappings(baked("local"))
    finish = translate("airflow.ti.finish,dag_id=etl,task_id=load,state=failed:1|c", rules)
    assert finish.name == "airflow_ti_finish_total"
    assert finish.labels == {"dag_id": "etl", "task_id": "load", "state": "failed"}
    run_time = translate("airflow.dagrun.duration.success,dag_id=etl:1500|ms", rules)
    assert run_time.name == "airflow_dagrun_duration_seconds"
    assert run_time.labels == {"dag_id": "etl", "state": "success"}
    slots = translate("airflow.executor.open_slots.CeleryExecutor,executor_class_name=CeleryExecutor:3|g", rules)
    assert slots.name == "airflow_executor_open_slots"
    assert translate("airflow.scheduler_heartbeat:1|g", rules) is None, "a type the mapping does not expect is dropped"
    assert translate("airflow.dag_processing.last_duration,file_name=x:1|ms", rules) is None


# Airflow's metric types -> the metric type a mapping's match_metric_type names.
REGISTRY_TYPES = {"counter": "counter", "gauge": "gauge", "timer": "observer"}


@pytest.mark.airflow
def test_mapping_allow_list_and_airflow_registry_agree(baked):
    project = baked("local")
    venv = project_venv(project)
    env = {**os.environ, "AIRFLOW_CONFIG": str(project.path / "config" / "airflow.cfg")}
    result = run([str(venv / "bin" / "python"), str(PROBES / "metrics_registry.py")], project.path, env)
    probe = last_json_line(result.stdout)
    allowed = {name for name, passes in probe["allowed"].items() if passes}
    mapped = set()
    for rule in mappings(project):
        if rule.drop:
            continue
        names = {name for name in probe["allowed"] if rule.pattern.match("airflow." + name)}
        assert names, f"{rule.match} maps no metric Airflow declares"
        for name in names:
            declared = probe["types"].get(name) or probe["types"][name.rsplit(".", 1)[0]]
            assert REGISTRY_TYPES[declared] == rule.metric_type, f"{rule.match}: Airflow sends a {declared}"
        mapped |= names
    assert allowed - mapped == set(), "allowed by metrics_allow_list but dropped by the mapping"
    assert mapped - allowed == set(), "mapped, but metrics_allow_list never sends it"
