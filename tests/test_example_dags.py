"""Run tier: `airflow dags test` for every example DAG against real local stand-ins.

One baked project (the defaults: LocalExecutor, Slack and PagerDuty alerts) on a real
Postgres metadata DB, with a second Postgres database as the warehouse, a local HTTP
server for outside APIs and alert webhooks, and a file:// object store for large XComs.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import BakedProject, airflow_env, project_venv, run
from services import CaptureServer, capture_server, free_port, postgres_server, stop_process_group, wait_for_url

pytestmark = [pytest.mark.airflow, pytest.mark.xdist_group("example_dags")]

LOGICAL_DATE = "2026-01-01"


@dataclass
class Stack:
    project: BakedProject
    env: dict[str, str]
    outside: CaptureServer
    warehouse_url: str
    home: Path

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run([str(Path(self.env["VIRTUAL_ENV"]) / "bin" / "airflow"), *args], self.project.path, self.env, check)

    def dags_test(self, dag_id: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.airflow("dags", "test", dag_id, LOGICAL_DATE, check=check)

    def warehouse(self, sql: str) -> str:
        return run(["psql", "-At", self.warehouse_url, "-c", sql], self.project.path).stdout.strip()


@pytest.fixture(scope="module")
def stack(baked, tmp_path_factory):
    project = baked("local")
    venv = project_venv(project)
    home = tmp_path_factory.mktemp("airflow-home")
    routes = {
        "/orders": (200, b'{"records": [{"id": 1}, {"id": 2}]}'),
        "/exports/": (200, b'{"state": "ready", "rows": 42}'),
    }
    with postgres_server(("airflow", "warehouse")) as urls, capture_server(routes) as outside:
        env = airflow_env(project.path, venv, home) | {
            "VIRTUAL_ENV": str(venv),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"].replace("postgresql://", "postgresql+psycopg://"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": f"file://{home}/xcom",
            "AIRFLOW_CONN_WAREHOUSE": urls["warehouse"],
            "AIRFLOW_CONN_EXAMPLE_API": outside.url,
            "AIRFLOW_CONN_EXAMPLE_EXPORT_API": outside.url,
            # Alerts post to the local capture server's /services path, as to a Slack webhook.
            "AIRFLOW_CONN_SLACK_ALERTS": json.dumps(
                {"conn_type": "slackwebhook", "host": f"{outside.url}/services", "password": "T000/B000/test"}
            ),
        }
        stack = Stack(project, env, outside, urls["warehouse"], home)
        stack.airflow("db", "migrate")
        yield stack


def test_safe_taskflow(stack):
    result = stack.dags_test("example_safe_taskflow")
    assert "100 orders, revenue" in result.stdout + result.stderr


def test_dynamic_mapping_fans_out_over_every_hour(stack):
    result = stack.dags_test("example_dynamic_mapping")
    assert "24/24 partitions" in result.stdout + result.stderr


def test_large_xcom_round_trips_through_the_object_store(stack):
    stack.dags_test("example_large_xcom")
    stored = list((stack.home / "xcom" / "example_large_xcom").rglob("*.gz"))
    assert stored, "the produce task's XCom should have gone to the file:// object store"
    assert sum(path.stat().st_size for path in stored) > 1000


def test_incremental_load_is_idempotent(stack):
    stack.dags_test("example_incremental_load")
    first = stack.warehouse("SELECT COUNT(*), SUM(amount) FROM example_orders")
    stack.dags_test("example_incremental_load")
    assert stack.warehouse("SELECT COUNT(*), SUM(amount) FROM example_orders") == first
    assert first.split("|")[0] == "100"


def test_quality_gate_passes_on_good_data_and_stops_on_bad(stack):
    stack.dags_test("example_incremental_load")
    stack.dags_test("example_quality_gate")

    # A failed warning check is logged, and the run still succeeds.
    stack.warehouse("DELETE FROM example_orders WHERE order_id IN (SELECT order_id FROM example_orders LIMIT 60)")
    warned = stack.dags_test("example_quality_gate")
    assert "Quality warning on example_orders" in warned.stdout + warned.stderr
    stack.dags_test("example_incremental_load")  # restores the full partition

    order_id = stack.warehouse("SELECT order_id FROM example_orders ORDER BY order_id LIMIT 1")
    stack.warehouse(f"UPDATE example_orders SET amount = -1 WHERE order_id = '{order_id}'")
    try:
        failed = stack.dags_test("example_quality_gate", check=False)
    finally:
        stack.warehouse(f"UPDATE example_orders SET amount = 1 WHERE order_id = '{order_id}'")
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "no_negative_amounts" in output
    assert "state=failed" in output
    alerts = [body for body in stack.outside.bodies("/services") if "example_quality_gate" in body]
    assert alerts and "error_checks" in alerts[-1], stack.outside.bodies("/services")


def test_api_ingest_calls_the_api_with_the_run_date(stack):
    result = stack.dags_test("example_api_ingest")
    assert "2 orders received" in result.stdout + result.stderr
    assert any(request.path.startswith("/orders?date=") for request in stack.outside.requests)


@contextlib.contextmanager
def api_server(stack: Stack) -> Iterator[tuple[str, str]]:
    """A real `airflow api-server` on the stack's DB; yields its URL and the admin's password."""
    port = free_port()
    env = stack.env | {"AIRFLOW__API__PORT": str(port)}
    log = (stack.home / f"api-server-{port}.log").open("w")
    airflow = str(Path(stack.env["VIRTUAL_ENV"]) / "bin" / "airflow")
    server = subprocess.Popen(
        [airflow, "api-server", "--port", str(port)],
        cwd=stack.project.path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        server_log = stack.home / f"api-server-{port}.log"
        wait_for_url(f"{url}/api/v2/version", server, timeout=180, exited=lambda: server_log.read_text()[-3000:])
        passwords = json.loads((stack.home / "simple_auth_manager_passwords.json.generated").read_text())
        yield url, passwords["admin"]
    finally:
        stop_process_group(server)
        log.close()


def test_pools_import_and_rest_sync_are_idempotent(stack, tmp_path):
    stack.airflow("pools", "import", "config/pools.json")
    listed = stack.airflow("pools", "list", "--output", "json").stdout
    imported = {pool["pool"]: int(pool["slots"]) for pool in json.loads(listed[listed.index("[") :])}
    declared = json.loads(stack.project.read("config/pools.json"))
    assert imported == {name: pool["slots"] for name, pool in declared.items()}

    drifted = {**declared, "sensor_pool": {**declared["sensor_pool"], "slots": 3}, "new_pool": {"slots": 2}}
    pools_file = tmp_path / "pools.json"
    pools_file.write_text(json.dumps(drifted))
    python = str(Path(stack.env["VIRTUAL_ENV"]) / "bin" / "python")
    sync = [python, "-m", "scripts.sync_pools", "--pools-file", str(pools_file)]
    with api_server(stack) as (url, password):
        env = {**os.environ, "AIRFLOW_API_URL": url, "AIRFLOW_API_USERNAME": "admin", "AIRFLOW_API_PASSWORD": password}
        first = run(sync, stack.project.path, env)
        assert "update sensor_pool" in first.stdout and "create new_pool" in first.stdout
        assert password not in first.stdout + first.stderr
        second = run(sync, stack.project.path, env)
        assert "0 change(s)" in second.stdout
        rejected = run(sync, stack.project.path, env | {"AIRFLOW_API_PASSWORD": "wrong"}, check=False)
        assert rejected.returncode == 1 and "HTTP 401" in rejected.stderr


def test_deferrable_sensor_waits_through_the_trigger(stack):
    result = stack.dags_test("example_deferrable_sensor")
    output = result.stdout + result.stderr
    assert "Export ready with 42 rows" in output
    assert any(request.path.startswith("/exports/") for request in stack.outside.requests)


def test_tenant_pipeline_runs_every_enabled_table(stack):
    result = stack.dags_test("tenant_globex")
    output = result.stdout + result.stderr
    assert "state=success" in output
    assert "task_id=load_orders" in output and "task_id=load_shipments" in output
    assert "task_id=load_returns" not in output  # disabled in tenants.yaml


def test_every_example_dag_has_a_run_test():
    # A new example DAG must get a run test here; the ids come from the template's own files.
    dags = Path(__file__).resolve().parents[1] / "{{cookiecutter.project_slug}}" / "dags"
    # example_kubernetes_offload is the exception: `airflow dags test` waits forever on a task
    # routed to KubernetesExecutor when no cluster exists; test_airflow.py parses it instead.
    example_ids = {path.stem for path in dags.glob("example_*.py")} - {"example_kubernetes_offload"}
    source = Path(__file__).read_text()
    untested = sorted(dag_id for dag_id in example_ids if f'"{dag_id}"' not in source)
    assert not untested, json.dumps(untested)
