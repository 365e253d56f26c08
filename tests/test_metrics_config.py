"""Where metrics go, per `metrics` choice (StatsD, OpenTelemetry, none): airflow.cfg's [metrics], the compose
stack, the requirements and the Helm values."""

from __future__ import annotations

import configparser

import pytest
import yaml
from monitoring import MAPPING

METRICS_VARIANTS = pytest.mark.parametrize("variant", ["local", "kubernetes", "no-examples"])


@METRICS_VARIANTS
def test_metrics_config_follows_the_choice(baked, variant):
    project = baked(variant)
    choice = project.answer("metrics")
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(project.read("config/airflow.cfg"))
    metrics = dict(cfg["metrics"]) if cfg.has_section("metrics") else {}
    compose = yaml.safe_load(project.read("docker-compose.yaml"))
    airflow_env = compose["x-airflow-common"]["environment"]
    requirements = project.read("requirements.txt").splitlines()
    if choice == "none":
        assert metrics == {}
    else:
        assert metrics["legacy_names_on"] == "False"
        patterns = [pattern.strip() for pattern in metrics["metrics_allow_list"].split(",")]
        assert all(patterns), "an empty pattern, as from a trailing comma, would allow every metric"
    if choice == "statsd":
        assert metrics["statsd_on"] == "True" and metrics["statsd_influxdb_enabled"] == "True"
        assert (metrics["statsd_host"], metrics["statsd_port"]) == ("localhost", "9125")
        assert airflow_env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"
        exporter = compose["services"]["statsd-exporter"]
        mounts = dict(volume.split(":")[:2] for volume in exporter["volumes"])
        assert f"--statsd.mapping-config={mounts['./' + MAPPING]}" in exporter["command"]
        assert "statsd" in requirements
    else:
        assert "statsd_on" not in metrics and "AIRFLOW__METRICS__STATSD_HOST" not in airflow_env
        assert "statsd" not in requirements
    assert (metrics.get("otel_on") == "True") is (choice == "otel")
    # Without a collector in the stack, OpenTelemetry would fail every export: compose switches it off.
    assert (airflow_env.get("AIRFLOW__METRICS__OTEL_ON") == "False") is (choice == "otel")


@pytest.mark.parametrize("variant", ["kubernetes", "hybrid"])  # metrics: otel, statsd
def test_helm_sends_metrics_where_the_choice_says(baked, variant):
    # On Kubernetes, cfg's localhost defaults reach nothing: the values must name the receiver.
    project = baked(variant)
    values = yaml.safe_load(project.read("deploy/helm/values.yaml"))
    env = yaml.safe_load(values["extraConfigMaps"]["airflow-runtime-env"]["data"])
    choice = project.answer("metrics")
    assert values["statsd"]["enabled"] is (choice == "statsd")
    assert ("AIRFLOW__METRICS__STATSD_HOST" in env) is (choice == "statsd")
    assert ("OTEL_EXPORTER_OTLP_ENDPOINT" in env) is (choice == "otel")
    if choice == "statsd":
        # The chart hands its exporter only the mapping list; each rule must stand on its own.
        assert yaml.safe_load(project.read(MAPPING)).get("defaults") == {"match_type": "glob"}
