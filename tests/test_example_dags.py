"""Run tier: every example DAG run end to end by Airflow's own DAG.test(), with and without a logical date.

One baked project (the defaults: LocalExecutor, Slack and PagerDuty alerts) on a real Postgres
metadata DB and a real Airflow 3.3.2. What a user's deployment provides for real, these tests
provide as stand-ins, and that is all they provide: a second Postgres database as the warehouse
(connection `warehouse`), a local HTTP server for the order and export APIs (`example_api`,
`example_export_api`) and as the Slack webhook (`slack_alerts`), and a file:// object store for
large XComs. The point is the DAGs' and the library's behaviour against those systems, including
when one of them is missing. `make run`'s own stand-ins and default connections are tested end to
end in test_runtime.py.

`airflow dags test` always gives the run a logical date (now, if none is given). Runs without one
go through probes/dag_test_runs.py, which calls DAG.test(logical_date=None) the way the CLI calls
DAG.test(logical_date=...): that is the run the REST API makes for `"logical_date": null`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import TEMPLATE_DIR, BakedProject, airflow_env, project_venv, run
from services import CaptureServer, capture_server, free_port, postgres_server, stop_process_group, wait_for_url

pytestmark = pytest.mark.airflow

BACKFILL_DATE = "2026-01-01"
DAG_TEST_RUNS = TEMPLATE_DIR / "tests" / "probes" / "dag_test_runs.py"
# Every example `DAG.test()` can run here, producers before consumers (the load before its gate).
# example_kubernetes_offload is the exception: a task routed to KubernetesExecutor waits forever
# when no cluster exists; test_airflow.py parses it instead.
RUNNABLE_EXAMPLES = (
    "example_safe_taskflow",
    "example_dynamic_mapping",
    "example_large_xcom",
    "example_incremental_load",
    "example_quality_gate",
    "example_api_ingest",
    "example_deferrable_sensor",
    "tenant_acme",
    "tenant_globex",
    "tenant_initech",
)
XCOM_PATH_VARIABLE = "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"


@dataclass
class Stack:
    project: BakedProject
    env: dict[str, str]
    outside: CaptureServer
    warehouse_url: str
    home: Path

    @property
    def bin(self) -> Path:
        return Path(self.env["VIRTUAL_ENV"]) / "bin"

    def airflow(self, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        return run([str(self.bin / "airflow"), *args], self.project.path, env or self.env, check)

    def dags_test(self, dag_id: str, *args: str, check: bool = True, env: dict | None = None):
        return self.airflow("dags", "test", dag_id, *args, check=check, env=env)

    def dag_test_runs(self, mode: str, *dag_ids: str, env: dict | None = None, cwd: Path | None = None):
        """Run the DAGs in one process; returns {dag_id: result} and the whole output."""
        command = [str(self.bin / "python"), str(DAG_TEST_RUNS), mode, *dag_ids]
        result = run(command, cwd or self.project.path, env or self.env, timeout=3600)
        output = result.stdout + result.stderr
        [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULTS ")]
        return json.loads(line.removeprefix("RESULTS ")), output

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
            XCOM_PATH_VARIABLE: f"file://{home}/xcom",
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


def utc_days_around(action) -> tuple[set[str], object]:
    """The UTC dates seen while `action` ran (two, if it ran across midnight), and its result."""
    before = datetime.now(UTC)
    result = action()
    after = datetime.now(UTC)
    return {before.date().isoformat(), after.date().isoformat()}, result


def test_every_example_dag_succeeds_without_a_logical_date(stack):
    days, (results, output) = utc_days_around(lambda: stack.dag_test_runs("none", *RUNNABLE_EXAMPLES))

    assert {dag_id: result["state"] for dag_id, result in results.items()} == dict.fromkeys(
        RUNNABLE_EXAMPLES, "success"
    ), output[-6000:]
    assert all(result["logical_date"] is None for result in results.values())
    # The day each run is for is the day it was due: the API and the export are asked for it.
    requested = {request.path for request in stack.outside.requests}
    assert requested & {f"/orders?date={day}" for day in days}, requested
    assert requested & {f"/exports/{day}" for day in days}, requested
    assert any(f"acme.orders for {day}" in output for day in days)
    # The load replaced the last whole UTC day before it ran, and the gate checked that window.
    yesterday = {(datetime.fromisoformat(day) - timedelta(days=1)).date().isoformat() for day in days}
    counts = [
        stack.warehouse(f"SELECT COUNT(*) FROM example_orders WHERE placed_at::date = '{day}'") for day in yesterday
    ]
    assert "100" in counts, counts
    assert any(f"checking [{{'start': '{day}T00:00:00+00:00'" in output for day in yesterday), output[-6000:]
    assert "24/24 partitions" in output
    assert "5000 rows came back exactly" in output


def test_every_example_dag_succeeds_with_a_logical_date_of_now(stack):
    # The UI's trigger form and `airflow dags test <dag_id>` both give the run the current time.
    results, output = stack.dag_test_runs("now", *RUNNABLE_EXAMPLES)

    assert {dag_id: result["state"] for dag_id, result in results.items()} == dict.fromkeys(
        RUNNABLE_EXAMPLES, "success"
    ), output[-6000:]
    assert all(result["logical_date"] for result in results.values())


def test_large_xcom_round_trips_exactly_through_the_object_store(stack, tmp_path):
    results, output = stack.dag_test_runs("none", "example_large_xcom", cwd=tmp_path)

    assert results["example_large_xcom"]["state"] == "success", output[-4000:]
    assert "5000 rows came back exactly" in output
    run_id = results["example_large_xcom"]["run_id"]
    stored = list((stack.home / "xcom" / "example_large_xcom" / run_id / "produce").rglob("*.gz"))
    assert len(stored) == 1 and stored[0].stat().st_size > 1000
    assert list(tmp_path.iterdir()) == []


def test_without_an_xcom_storage_path_a_large_xcom_fails_its_producer_and_small_ones_stay_in_the_db(stack, tmp_path):
    env = stack.env | {XCOM_PATH_VARIABLE: ""}

    results, output = stack.dag_test_runs("none", "example_large_xcom", "example_safe_taskflow", env=env, cwd=tmp_path)

    assert results["example_large_xcom"]["state"] == "failed"
    assert (
        "The XCom 'return_value' of example_large_xcom.produce is too large for the metadata DB and "
        "[common.io] xcom_objectstorage_path cannot hold it: it is not set. "
        "Set AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"
    ) in output
    assert "rows came back" not in output, "consume must never run on what produce could not store"
    # Small XComs need no object storage at all.
    assert results["example_safe_taskflow"]["state"] == "success", output[-4000:]
    # Nothing was written relative to the working directory (the stock backend's fallback).
    assert list(tmp_path.iterdir()) == []
    assert not (stack.project.path / "example_large_xcom").exists()


def test_dynamic_mapping_fans_out_over_every_hour(stack):
    result = stack.dags_test("example_dynamic_mapping")
    assert "24/24 partitions" in result.stdout + result.stderr


def test_a_failed_partition_fails_the_mapping_run(stack, tmp_path):
    # A planted fault: one hour's partition fails for good. Airflow sets the run's state from its
    # leaf tasks, so the run must end failed, not hide the partition behind the ALL_DONE aggregate.
    project = stack.project.copy_to(tmp_path)
    module = project.path / "plugins" / project.slug / "batch_processing.py"
    module.write_text(
        module.read_text().replace(
            'def process_partition(key: str) -> dict:\n    """',
            'def process_partition(key: str) -> dict:\n    if key.endswith("T05"):\n'
            '        raise AirflowFailException(f"planted fault in {key}")\n    """',
        )
    )
    assert "planted fault" in module.read_text()
    env = stack.env | {
        "AIRFLOW__CORE__DAGS_FOLDER": str(project.path / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(project.path / "plugins"),
    }

    failed = stack.dags_test("example_dynamic_mapping", check=False, env=env)

    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output[-4000:]
    assert "planted fault in" in output and "T05" in output
    assert "1 of 24 partitions failed or produced nothing: the run is incomplete" in output
    assert "DagRun Finished: dag_id=example_dynamic_mapping" in output and "state=failed" in output


def test_incremental_load_is_idempotent(stack):
    # Re-running a day, as a backfill or a clear does, replaces its rows instead of adding to them.
    stack.dags_test("example_incremental_load", BACKFILL_DATE)
    first = stack.warehouse("SELECT COUNT(*), SUM(amount) FROM example_orders")
    stack.dags_test("example_incremental_load", BACKFILL_DATE)
    assert stack.warehouse("SELECT COUNT(*), SUM(amount) FROM example_orders") == first
    day = stack.warehouse("SELECT COUNT(*) FROM example_orders WHERE placed_at::date = '2025-12-31'")
    assert day == "100"


def test_quality_gate_checks_the_latest_load_and_stops_on_bad_data(stack):
    stack.dags_test("example_incremental_load", BACKFILL_DATE)
    # A manual gate run checks the window the load announced last: [2025-12-31, 2026-01-01).
    passed = stack.dags_test("example_quality_gate")
    assert "checking [{'start': '2025-12-31T00:00:00+00:00', 'end': '2026-01-01T00:00:00+00:00'}]" in passed.stdout

    # A failed warning check is logged, and the run still succeeds.
    day = "placed_at >= '2025-12-31' AND placed_at < '2026-01-01'"
    sixty = f"SELECT order_id FROM example_orders WHERE {day} LIMIT 60"
    stack.warehouse(f"DELETE FROM example_orders WHERE order_id IN ({sixty})")
    warned = stack.dags_test("example_quality_gate")
    assert "Quality warning on example_orders" in warned.stdout + warned.stderr
    stack.dags_test("example_incremental_load", BACKFILL_DATE)  # restores the full partition

    order_id = stack.warehouse(f"SELECT order_id FROM example_orders WHERE {day} ORDER BY order_id LIMIT 1")
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
    result = stack.dags_test("example_api_ingest", BACKFILL_DATE)
    assert "2 orders received" in result.stdout + result.stderr
    assert any(request.path == f"/orders?date={BACKFILL_DATE}" for request in stack.outside.requests)


def test_a_missing_connection_fails_the_task_by_name_and_an_unset_alert_channel_only_warns(stack):
    # As on a machine where nobody defined example_api or slack_alerts yet.
    env = {k: v for k, v in stack.env.items() if k not in ("AIRFLOW_CONN_EXAMPLE_API", "AIRFLOW_CONN_SLACK_ALERTS")}
    posted_before = len(stack.outside.bodies("/services"))

    failed = stack.dags_test("example_api_ingest", check=False, env=env)

    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "Connection 'example_api' is not defined: set AIRFLOW_CONN_EXAMPLE_API" in output
    # Failed for good at the first try: a retry would find the connection missing again.
    assert "try_number=2" not in output and "up_for_retry" not in output
    assert output.count("Alert channel slack is off: connection 'slack_alerts' is not defined") == 1
    assert "AIRFLOW_CONN_SLACK_ALERTS=" in output
    assert "failed to send" not in output
    assert len(stack.outside.bodies("/services")) == posted_before


@contextlib.contextmanager
def api_server(stack: Stack) -> Iterator[tuple[str, str]]:
    """A real `airflow api-server` on the stack's DB; yields its URL and the admin's password."""
    port = free_port()
    env = stack.env | {"AIRFLOW__API__PORT": str(port)}
    log = (stack.home / f"api-server-{port}.log").open("w")
    server = subprocess.Popen(
        [str(stack.bin / "airflow"), "api-server", "--port", str(port)],
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
    sync = [str(stack.bin / "python"), "-m", "scripts.sync_pools", "--pools-file", str(pools_file)]
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
    result = stack.dags_test("example_deferrable_sensor", BACKFILL_DATE)
    output = result.stdout + result.stderr
    assert "Export ready with 42 rows" in output
    assert any(request.path == f"/exports/{BACKFILL_DATE}" for request in stack.outside.requests)


def test_tenant_pipeline_runs_every_enabled_table(stack):
    result = stack.dags_test("tenant_globex")
    output = result.stdout + result.stderr
    assert "state=success" in output
    assert "task_id=load_orders" in output and "task_id=load_shipments" in output
    assert "task_id=load_returns" not in output  # disabled in tenants.yaml


def test_every_example_dag_is_run_here():
    # A new example DAG must be added to RUNNABLE_EXAMPLES; the ids come from the template's own files.
    dags = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "dags"
    example_ids = {path.stem for path in dags.glob("example_*.py")} - {"example_kubernetes_offload"}
    tenants = {f"tenant_{name}" for name in ("acme", "globex", "initech")}
    assert set(RUNNABLE_EXAMPLES) == example_ids | tenants
