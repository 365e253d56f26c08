"""deploy/helm/values.yaml and config/airflow.cfg agree on where metrics, task logs and links go.

Remote logging is loaded by Airflow's own logging configuration, in a fresh interpreter with the
environment the chart gives every component and task pod, as each of them loads it at start.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import subprocess
import sys
from urllib.parse import urlsplit

import yaml

from conftest import AIRFLOW_CFG, PROJECT_ROOT

HELM_VALUES = PROJECT_ROOT / "deploy" / "helm" / "values.yaml"
# What the chart's templates make of these references (its ports.statsdIngest defaults to 9125).
CHART_STATSD_SERVICE = {% raw %}'{{ include "airflow.fullname" . }}-statsd'{% endraw %}
CHART_STATSD_INGEST_PORT = {% raw %}"{{ .Values.ports.statsdIngest }}"{% endraw %}
CHART_DEFAULT_STATSD_INGEST_PORT = 9125
REQUIRED_BASE_URL = {% raw %}r'\{\{ required "([^"]+)" \.Values\.config\.api\.base_url \}\}'{% endraw %}


def helm_values() -> dict:
    return yaml.safe_load(HELM_VALUES.read_text())


def runtime_env() -> dict[str, str]:
    """The environment every Airflow container and task pod gets from the airflow-runtime-env ConfigMap."""
    return yaml.safe_load(helm_values()["extraConfigMaps"]["airflow-runtime-env"]["data"])


def airflow_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(AIRFLOW_CFG)
    return parser


def install_command() -> str:
    """The `helm upgrade` command in the values file's header, its continued lines joined."""
    comments = "\n".join(line.removeprefix("#").strip() for line in HELM_VALUES.read_text().splitlines())
    return next(line for line in comments.replace("\\\n", " ").splitlines() if line.startswith("helm upgrade "))


def test_metrics_go_where_airflow_cfg_sends_them():
    cfg, values, env = airflow_cfg(), helm_values(), runtime_env()
    statsd_on = cfg.getboolean("metrics", "statsd_on", fallback=False)
    otel_on = cfg.getboolean("metrics", "otel_on", fallback=False)
    # The chart's StatsD exporter runs exactly when Airflow sends StatsD.
    assert values["statsd"]["enabled"] is statsd_on
    if statsd_on:
        assert env["AIRFLOW__METRICS__STATSD_HOST"] == CHART_STATSD_SERVICE
        assert env["AIRFLOW__METRICS__STATSD_PORT"] == CHART_STATSD_INGEST_PORT
        ingest = values.get("ports", {}).get("statsdIngest", CHART_DEFAULT_STATSD_INGEST_PORT)
        assert cfg.getint("metrics", "statsd_port") == ingest, "airflow.cfg and the chart disagree on the port"
    else:
        assert not {name for name in env if name.startswith("AIRFLOW__METRICS__STATSD")}
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert (endpoint is not None) is otel_on, "OpenTelemetry needs a collector endpoint, and only then"
    if otel_on:
        collector = yaml.safe_load((PROJECT_ROOT / "monitoring" / "otel-collector.yaml").read_text())
        receiver = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
        assert urlsplit(endpoint).port == int(receiver.rpartition(":")[2])


def test_the_charts_statsd_exporter_gets_the_projects_mapping():
    cfg = airflow_cfg()
    if not cfg.getboolean("metrics", "statsd_on", fallback=False):
        assert "statsd.overrideMappings" not in install_command()
        return
    mapping = yaml.safe_load((PROJECT_ROOT / "monitoring" / "statsd_mapping.yaml").read_text())
    # The chart writes only `mappings` into its exporter's config; nothing may hide in `defaults`
    # beyond statsd_exporter's own default, glob matching.
    assert mapping.get("defaults", {}) in ({}, {"match_type": "glob"})
    snippet = re.search(r"statsd\.overrideMappings=\$\((.*?)\)\"", install_command())[1]
    argv = shlex.split(snippet)
    assert argv[0] == ".venv/bin/python"
    printed = subprocess.run([sys.executable, *argv[1:]], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert json.loads(printed.stdout) == mapping["mappings"]


REMOTE_LOG_PROBE = """
import json
from airflow.config_templates import airflow_local_settings as settings
remote = settings.REMOTE_TASK_LOG
print(json.dumps({"io": type(remote).__name__, "remote_base": getattr(remote, "remote_base", None)}))
"""


def deployment_env(tmp_path) -> dict[str, str]:
    """This test run's environment with the deployment's logging settings instead of any local ones."""
    logging = {name: value for name, value in runtime_env().items() if name.startswith("AIRFLOW__LOGGING__")}
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW__LOGGING__")}
    return env | logging | {"AIRFLOW_HOME": str(tmp_path)}


def test_task_logs_go_to_the_xcom_bucket_and_outlive_the_pod(tmp_path):
    env = runtime_env()
    logs = urlsplit(env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"])
    xcom = urlsplit(env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"])
    assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "True"
    assert (logs.scheme, logs.netloc) == (xcom.scheme, xcom.netloc), "logs and XComs share one bucket"
    assert logs.path.strip("/") and logs.path != xcom.path, "each under its own prefix"
    # Airflow's own logging setup, as every component and task pod runs it with this environment.
    loaded = subprocess.run(
        [sys.executable, "-c", REMOTE_LOG_PROBE], env=deployment_env(tmp_path), capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr
    remote = json.loads(loaded.stdout.splitlines()[-1])
    expected = {"s3": "S3RemoteLogIO", "gs": "GCSRemoteLogIO"}[logs.scheme]
    assert remote == {"io": expected, "remote_base": env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"]}
    lint = subprocess.run(
        [sys.executable, "-m", "airflow", "config", "lint", "--ignore-option", "executor"],
        env=deployment_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert "No issues found" in lint.stdout, lint.stdout + lint.stderr
    # The local copy is only a buffer once the upload is done.
    assert airflow_cfg().getboolean("logging", "delete_local_logs")


def test_links_use_the_base_url_the_team_fills_in():
    values, env = helm_values(), runtime_env()
    # Deployment-specific, so never in airflow.cfg: there it would point every deployment at one host.
    assert not airflow_cfg().has_option("api", "base_url")
    assert values["config"]["api"]["base_url"] == "", "a placeholder URL would send alert links nowhere"
    # Helm's `required` fails the install, naming the value, while it is empty.
    required = re.fullmatch(REQUIRED_BASE_URL, env["AIRFLOW__API__BASE_URL"])
    assert required and "config.api.base_url" in required[1], env["AIRFLOW__API__BASE_URL"]
{%- if cookiecutter.__uses_celery == "True" %}


def test_celery_workers_answer_the_charts_liveness_probe():
    # The chart's probe is `celery inspect ping`, which only remote control answers.
    probe = helm_values()["workers"].get("livenessProbe", {})
    assert probe.get("enabled", True)
    if not probe.get("command"):
        assert airflow_cfg().getboolean("celery", "worker_enable_remote_control"), (
            "the chart's liveness probe (celery inspect ping) fails without [celery] worker_enable_remote_control"
        )
{%- endif %}
