"""The Kubernetes shape: Helm values the official chart accepts, the chart's Celery liveness probe
against a real worker, and task logs that outlive the worker that wrote them.

Render tier: every Kubernetes variant's deploy/helm/values.yaml validates against the schema the
project ships (tests/helm_chart_schema.json), and scripts/helm_chart_schema.py derives such a
schema by the rules it documents. Airflow tier: a misspelt key or a wrong type in the values
fails the project's own suite; the chart's worker liveness probe, run as the chart runs it,
answers against `airflow celery worker` on real Redis with the baked config, and fails once
remote control is off; a task run by a real deployment with the Helm values' remote logging
(the bucket on moto's S3 server) uploads its log, drops the local copy, and the REST API still
serves the log.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml
from airflow_stack import airflow_stack
from helpers import TEMPLATE_DIR, BakedProject, airflow_env, project_venv, run
from jsonschema import Draft7Validator
from services import poll, postgres_server, redis_server, stop_process_group
from test_deploy import moto_s3

KUBERNETES_VARIANTS = pytest.mark.parametrize("variant", ["kubernetes", "hybrid", "gcp-secrets"])
VALUES = "deploy/helm/values.yaml"
SCHEMA = "tests/helm_chart_schema.json"

# The Celery worker's liveness probe in the chart's templates/workers/worker-deployment.yaml
# (chart 1.19), where workers.livenessProbe.command is unset. The chart's celery_executor_namespace
# renders, for Airflow 3, the celery provider's app below.
CHART_WORKER_PROBE = (
    "CONNECTION_CHECK_MAX_COUNT=0 exec /entrypoint python -m celery --app "
    '{{ include "celery_executor_namespace" . }} inspect ping -d celery@$(hostname)'
)
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"
# The official image's entrypoint, which here would only wait for the DB; the variable turns that off.
IMAGE_ENTRYPOINT = "CONNECTION_CHECK_MAX_COUNT=0 exec /entrypoint "
# Celery's exit status for "No nodes replied" (EX_UNAVAILABLE).
NO_NODES_REPLIED = 69


def load_script():
    spec = importlib.util.spec_from_file_location(
        "helm_chart_schema", TEMPLATE_DIR / "scripts" / "helm_chart_schema.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def schema_errors(schema: dict, values: dict) -> list[str]:
    return sorted(
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in Draft7Validator(schema).iter_errors(values)
    )


# ── Render tier ───────────────────────────────────────────────────────────────────────────────


@KUBERNETES_VARIANTS
def test_helm_values_fit_the_chart_schema_the_project_ships(baked, variant):
    project = baked(variant)
    schema = json.loads(project.read(SCHEMA))
    assert schema_errors(schema, yaml.safe_load(project.read(VALUES))) == []
    assert f"apache-airflow/airflow --version {schema['x-chart-version']} " in project.read(VALUES)
    assert schema["x-chart-source"].startswith("apache/airflow@")


def test_the_derivation_keeps_names_and_types_where_the_values_go():
    script = load_script()
    chart = {
        "type": "object",
        "properties": {
            "used": {
                "type": "object",
                "additionalProperties": False,
                "description": "dropped",
                "properties": {
                    "flag": {"type": "boolean", "default": True},
                    "deep": {"type": "object", "properties": {"never": {"type": "string"}}},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                },
            },
            "open": {"type": "object", "properties": {"kept": {"type": "integer"}}},
            "maps": {
                "type": "object",
                "additionalProperties": {"type": "object", "properties": {"x": {"type": "string"}}},
            },
            "ref": {"$ref": "#/definitions/io.k8s.api.core.v1.Affinity"},
            "unused": {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}},
        },
    }
    used = {"used": {"flag": {}}, "open": {"kept": {}}, "maps": {"one": {"x": {}}}}
    derived = script.derive(chart, used, "9.9.9", "apache/airflow@" + "0" * 40)
    assert derived["x-chart-version"] == "9.9.9" and derived["additionalProperties"] is False
    assert derived["properties"]["used"] == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "flag": {"type": "boolean"},
            "deep": {"type": "object"},
            "mode": {"type": "string", "enum": ["a", "b"]},
        },
    }
    assert derived["properties"]["open"] == {"type": "object", "properties": {"kept": {"type": "integer"}}}
    assert derived["properties"]["maps"]["additionalProperties"]["properties"] == {"x": {"type": "string"}}
    # A top-level object the values leave alone keeps its key names where the chart closes it.
    assert derived["properties"]["ref"] == {}
    assert derived["properties"]["unused"] == {"type": "object", "propertyNames": {"enum": ["a"]}}
    assert json.loads(script.render({k: v for k, v in derived.items() if not k.startswith(("$", "x-"))})) == {
        k: v for k, v in derived.items() if not k.startswith(("$", "x-"))
    }
    assert schema_errors(derived, {"usd": 1}) == [": Additional properties are not allowed ('usd' was unexpected)"]
    assert schema_errors(derived, {"used": {"flag": "yes"}}) == ["used.flag: 'yes' is not of type 'boolean'"]
    assert schema_errors(derived, {"unused": {"b": "x"}}) == ["unused: 'b' is not one of ['a']"]


# ── Airflow tier ──────────────────────────────────────────────────────────────────────────────


@pytest.mark.airflow
def test_a_misspelt_key_or_a_wrong_type_in_the_values_fails_the_project_suite(baked, tmp_path):
    project = baked("kubernetes").copy_to(tmp_path)
    venv = project_venv(project)
    values = project.path / VALUES
    pristine = values.read_text()
    broken = (
        pristine.replace("\nexecutor:", "\nexector:", 1)
        .replace("postgresql:\n  enabled: false", 'postgresql:\n  enabled: "false"', 1)
        .replace("statsd:\n  enabled: false", "statsd:\n  enable: false", 1)
    )
    assert broken.count("exector:") == broken.count('enabled: "false"') == broken.count("enable: false") == 1
    node = "tests/test_helm_values.py::test_values_match_the_charts_schema"
    command = [str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", node]
    env = airflow_env(project.path, venv, tmp_path / "home")
    assert run(command, project.path, env, check=False).returncode == 0, "the pristine values must pass"
    values.write_text(broken)
    result = run(command, project.path, env, check=False)
    assert result.returncode == 1, result.stdout[-3000:]
    for expected in ("'exector' was unexpected", "'enable' was unexpected", "'false' is not of type 'boolean'"):
        assert expected in result.stdout, result.stdout[-3000:]


def chart_probe(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """The chart's worker liveness probe, rendered for Airflow 3 and run as its exec probe runs it."""
    command = CHART_WORKER_PROBE.replace('{{ include "celery_executor_namespace" . }}', CELERY_APP)
    assert command.startswith(IMAGE_ENTRYPOINT)
    command = "exec " + command.removeprefix(IMAGE_ENTRYPOINT)
    return subprocess.run(["sh", "-c", command], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def start_worker(env: dict[str, str], project: BakedProject, venv: Path, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [str(venv / "bin" / "airflow"), "celery", "worker"],
            cwd=project.path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_until_ready(worker: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while " ready." not in log.read_text(errors="replace"):
        assert worker.poll() is None, f"the worker exited:\n{log.read_text(errors='replace')[-3000:]}"
        assert time.monotonic() < deadline, f"the worker did not get ready:\n{log.read_text(errors='replace')[-3000:]}"
        time.sleep(1)


@pytest.mark.airflow
def test_the_charts_liveness_probe_answers_for_a_worker_on_the_baked_config(baked, tmp_path):
    project = baked("celery").copy_to(tmp_path)
    venv = project_venv(project)
    with postgres_server(("airflow",)) as urls, redis_server() as broker:
        env = airflow_env(project.path, venv, tmp_path / "home") | {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"].replace("postgresql://", "postgresql+psycopg://"),
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + urls["airflow"],
        }
        log = tmp_path / "worker.log"
        worker = start_worker(env, project, venv, log)
        try:
            wait_until_ready(worker, log)
            answered = chart_probe(env, project.path)
            assert answered.returncode == 0, answered.stdout + answered.stderr
            assert "pong" in answered.stdout
        finally:
            stop_process_group(worker)
        # The same worker without remote control: the probe fails, and Kubernetes would restart it.
        silent_env = env | {"AIRFLOW__CELERY__WORKER_ENABLE_REMOTE_CONTROL": "False"}
        worker = start_worker(silent_env, project, venv, log)
        try:
            wait_until_ready(worker, log)
            unanswered = chart_probe(silent_env, project.path)
            assert unanswered.returncode == NO_NODES_REPLIED, unanswered.stdout + unanswered.stderr
            assert "No nodes replied" in unanswered.stdout + unanswered.stderr
        finally:
            stop_process_group(worker)


LOG_BUCKET = "team-airflow-data"
# The example reads its data interval, so it runs with a logical date, as a scheduled run does.
LOGICAL_DATE = "2026-01-01T00:00:00Z"


@pytest.mark.airflow
def test_task_logs_outlive_the_worker_through_the_helm_values_remote_logging(baked, tmp_path):
    # The Helm values' logging settings, on the local bake (LocalExecutor, the amazon provider),
    # with the placeholder bucket pointed at moto's S3 server.
    helm_env = yaml.safe_load(
        yaml.safe_load(baked("kubernetes").read(VALUES))["extraConfigMaps"]["airflow-runtime-env"]["data"]
    )
    logging_env = {
        name: value.replace("CHANGE-ME", LOG_BUCKET)
        for name, value in helm_env.items()
        if name.startswith("AIRFLOW__LOGGING__")
    }
    assert logging_env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"] == f"s3://{LOG_BUCKET}/logs"
    home = tmp_path / "home"
    project = baked("local").copy_to(tmp_path)
    with postgres_server(("airflow",)) as urls, moto_s3() as s3_url:
        aws = {
            "AWS_ENDPOINT_URL": s3_url,
            "AWS_ACCESS_KEY_ID": "moto",
            "AWS_SECRET_ACCESS_KEY": "moto-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            region_name="us-east-1",
            aws_access_key_id="moto",
            aws_secret_access_key="moto-secret",
        )
        s3.create_bucket(Bucket=LOG_BUCKET)
        env = (
            aws
            | logging_env
            | {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"].replace(
                    "postgresql://", "postgresql+psycopg://"
                ),
                "AIRFLOW__CORE__PARALLELISM": "4",
            }
        )
        with airflow_stack(project, home, env) as stack:
            stack.wait_for_dags({"example_safe_taskflow"})
            run_id = stack.trigger("example_safe_taskflow", LOGICAL_DATE)
            assert stack.wait_for_run("example_safe_taskflow", run_id) == "success", stack.task_instances(
                "example_safe_taskflow", run_id
            )

            # The task's supervisor uploads the log after it has reported the task's state, so the
            # run can be "success" a moment before the upload lands: wait for it, not for a time.
            def uploaded_logs() -> list[str]:
                listing = s3.list_objects_v2(Bucket=LOG_BUCKET, Prefix="logs/").get("Contents", [])
                return [item["Key"] for item in listing if f"run_id={run_id}/task_id=report/" in item["Key"]]

            def local_logs() -> list[Path]:
                return [path for path in (home / "logs").rglob("*.log") if f"run_id={run_id}" in str(path)]

            uploaded = poll(uploaded_logs, f"the upload of {run_id}'s report log to s3://{LOG_BUCKET}/logs/", 180)
            assert "orders, revenue" in s3.get_object(Bucket=LOG_BUCKET, Key=uploaded[0])["Body"].read().decode()
            # The supervisor deletes its copy right after the upload.
            poll(lambda: not local_logs(), "the deletion of the worker's copy of the log", 180)
            assert local_logs() == [], "delete_local_logs: once uploaded, the worker's copy is gone"
            quoted = urllib.request.quote(run_id, safe="")
            served = stack.request(
                "GET", f"/api/v2/dags/example_safe_taskflow/dagRuns/{quoted}/taskInstances/report/logs/1"
            )
            assert "orders, revenue" in json.dumps(served), served
