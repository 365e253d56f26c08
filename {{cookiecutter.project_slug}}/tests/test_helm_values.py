"""deploy/helm/values.yaml: values the chart accepts, holding no secret, agreeing with config/airflow.cfg.

The values are checked against tests/helm_chart_schema.json, derived from the chart's own
values.schema.json, and agree with airflow.cfg on executors, metrics, task logs and links.

Remote logging is loaded by Airflow's own logging configuration, in a fresh interpreter with the
environment the chart gives every component and task pod, as each of them loads it at start.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
import yaml

from conftest import HELM_VALUES, PROJECT_ROOT, airflow_cfg, configured_executors, helm_env_names, helm_values

HELM_CHART_SCHEMA = PROJECT_ROOT / "tests" / "helm_chart_schema.json"
# What the chart's templates make of these references (its ports.statsdIngest defaults to 9125).
CHART_STATSD_SERVICE = '{{ include "airflow.fullname" . }}-statsd'
CHART_STATSD_INGEST_PORT = "{{ .Values.ports.statsdIngest }}"
CHART_DEFAULT_STATSD_INGEST_PORT = 9125
REQUIRED_BASE_URL = r'\{\{ required "([^"]+)" \.Values\.config\.api\.base_url \}\}'
# Chart values that hold a secret in plain text; each has a ...SecretName counterpart.
INLINE_SECRET_KEYS = {
    "apiSecretKey",
    "brokerUrl",
    "fernetKey",
    "jwtSecret",
    "keytabBase64Content",
    "metadataConnection",
    "pass",
    "password",
    "resultBackendConnection",
    "sshKey",
    "webserverSecretKey",
}


def runtime_env() -> dict[str, str]:
    """The environment every Airflow container and task pod gets from the airflow-runtime-env ConfigMap."""
    return yaml.safe_load(helm_values()["extraConfigMaps"]["airflow-runtime-env"]["data"])


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


def test_celery_workers_answer_the_charts_liveness_probe():
    if "CeleryExecutor" not in configured_executors():
        pytest.skip("no Celery workers")
    # The chart's probe is `celery inspect ping`, which only remote control answers.
    probe = helm_values()["workers"].get("livenessProbe", {})
    assert probe.get("enabled", True)
    if not probe.get("command"):
        assert airflow_cfg().getboolean("celery", "worker_enable_remote_control"), (
            "the chart's liveness probe (celery inspect ping) fails without [celery] worker_enable_remote_control"
        )


def test_values_match_the_charts_schema():
    # The chart ignores a top-level key it does not know, so a misspelling would silently fall
    # back to the chart's default; a wrong type fails only at `helm upgrade`.
    from jsonschema import Draft7Validator

    schema = json.loads(HELM_CHART_SCHEMA.read_text())
    errors = sorted(
        f"{'.'.join(map(str, error.absolute_path)) or '(top level)'}: {error.message}"
        for error in Draft7Validator(schema).iter_errors(helm_values())
    )
    assert not errors, f"{HELM_VALUES.name} does not fit chart {schema['x-chart-version']}:\n" + "\n".join(errors)


def test_the_install_command_names_the_chart_version_the_schema_came_from():
    installed = re.findall(r"apache-airflow/airflow --version (\S+)", HELM_VALUES.read_text())
    assert installed == [json.loads(HELM_CHART_SCHEMA.read_text())["x-chart-version"]]


def test_helm_deploys_the_executors_airflow_cfg_configures():
    assert helm_values()["executor"].split(",") == configured_executors()


def test_chart_expects_the_airflow_version_the_image_runs():
    from airflow import __version__ as airflow_version

    # The chart picks components and commands by this version (api-server from 3.0 on).
    assert helm_values()["airflowVersion"] == airflow_version


def test_no_secret_is_written_into_the_values():
    inline, references = [], {}

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                where = f"{path}.{key}" if path else key
                if key in INLINE_SECRET_KEYS and value not in (None, "", {}):
                    inline.append(where)
                if key.endswith("SecretName"):
                    references[where] = value
                walk(value, where)

    values = helm_values()
    walk(values, "")
    assert not inline, f"reference a Kubernetes Secret (...SecretName) instead of: {inline}"
    required = {"fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName", "data.metadataSecretName"}
    if "CeleryExecutor" in configured_executors():
        required.add("data.brokerUrlSecretName")
    missing = sorted(name for name in required if not references.get(name))
    assert not missing, f"name the Kubernetes Secret for: {missing}"


def test_environment_in_values_sets_only_known_non_secret_options():
    from airflow.configuration import conf

    def env_name(section: str, option: str) -> str:
        return f"AIRFLOW__{section.upper().replace('.', '_')}__{option.upper()}"

    known = {
        env_name(section, option)
        for section, description in conf.configuration_description.items()
        for option in description["options"]
    }
    sensitive = {env_name(section, option) for section, option in conf.sensitive_config_values}
    names = {name for name in helm_env_names(helm_values()) if name.startswith("AIRFLOW__")}
    assert not sorted(names - known), f"options Airflow does not know: {sorted(names - known)}"
    assert not sorted(names & sensitive), f"put these in a Secret: {sorted(names & sensitive)}"


def test_keda_scales_celery_workers_only_when_celery_runs():
    values, cfg = helm_values(), airflow_cfg()
    keda = values.get("workers", {}).get("keda", {})
    uses_celery = "CeleryExecutor" in configured_executors()
    assert bool(keda.get("enabled")) == uses_celery
    if uses_celery:
        # KEDA's query divides queued and running Celery tasks by the chart's copy of this.
        concurrency = cfg.getint("celery", "worker_concurrency")
        assert values["config"]["celery"]["worker_concurrency"] == concurrency
        useful_workers = math.ceil(cfg.getint("core", "parallelism") / concurrency)
        assert keda["maxReplicaCount"] == useful_workers, "workers beyond [core] parallelism never get a task"
