"""OpenTelemetry: the collector config serves OTLP to Prometheus on loopback only, and Airflow's own OTel
logger exports the series the alert rules read, under the same names once the collector translates them."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml
from helpers import PROBES, last_json_line, project_venv
from monitoring import RULES, mappings, rule_series


def test_otel_collector_serves_otlp_to_prometheus(baked):
    project = baked("kubernetes")
    collector = yaml.safe_load(project.read("monitoring/otel-collector.yaml"))
    pipeline = collector["service"]["pipelines"]["metrics"]
    assert pipeline["receivers"] == ["otlp"] and pipeline["exporters"] == ["prometheus"]
    assert collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert collector["exporters"]["prometheus"]["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert "otel-collector.yaml" in project.read(RULES)


def test_the_collector_run_line_publishes_on_loopback_only(baked):
    # OTLP accepts writes from anyone who reaches it, and the exporter serves every series.
    text = baked("kubernetes").read("monitoring/otel-collector.yaml").replace("\\\n#", " ")
    run_line = re.search(r"docker run (.*?)otel/opentelemetry-collector", text, re.S)[1]
    published = re.findall(r"(?:-p|--publish)\s+(\S+)", run_line)
    assert published and all(port.startswith("127.0.0.1:") for port in published), published


def prometheus_name(otel_name: str, metric: dict) -> str:
    """The collector's Prometheus exporter's name for a metric (UnderscoreEscapingWithSuffixes)."""
    name = re.sub(r"[^a-zA-Z0-9_]", "_", otel_name)
    return name + "_total" if metric["monotonic"] else name


@pytest.mark.airflow
def test_opentelemetry_metrics_reach_prometheus_under_the_names_the_rules_use(baked, tmp_path):
    project = baked("kubernetes")
    assert project.answer("metrics") == "otel"
    venv = project_venv(project)
    # What the rules read, as Airflow names and types it: the StatsD variant's mapping records both.
    wanted = [
        (rule.match.removeprefix("airflow."), rule.metric_type, {"dag_id": "etl"})
        for rule in mappings(baked("local"))
        if rule.series() & rule_series(project)
    ]
    assert len(wanted) == len(rule_series(project))
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW_CONFIG": str(project.path / "config" / "airflow.cfg")}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(PROBES / "otel_export.py")],
        input=json.dumps(wanted),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    exported = last_json_line(result.stdout)
    served = {prometheus_name(name, metric) for name, metric in exported.items()}
    assert served == rule_series(project)
    assert all(metric["attributes"] == ["dag_id"] for metric in exported.values()), "tags travel as labels"
