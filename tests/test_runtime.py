"""End to end: the baked project's own config on real components, triggered through REST API v2.

LocalExecutor: Postgres plus api-server, scheduler, dag-processor and triggerer as separate
processes. The deferrable sensor finishes through the real triggerer.
"""

from __future__ import annotations

import json

import pytest
from airflow_stack import airflow_stack
from services import capture_server, postgres_server

pytestmark = [pytest.mark.airflow, pytest.mark.xdist_group("runtime")]

LOGICAL_DATE = "2026-01-01T00:00:00Z"
# dag_id -> logical date to trigger with (None: a manual run "now")
RUNS = {
    "example_safe_taskflow": LOGICAL_DATE,
    "example_dynamic_mapping": LOGICAL_DATE,
    "example_deferrable_sensor": None,
    "example_api_ingest": LOGICAL_DATE,
    "example_incremental_load": LOGICAL_DATE,
    "tenant_acme": None,
}


@pytest.fixture(scope="module")
def local_stack(baked, tmp_path_factory):
    project = baked("local")
    home = tmp_path_factory.mktemp("runtime-local")
    routes = {
        "/orders": (200, b'{"records": [{"id": 1}]}'),
        "/exports/": (200, b'{"state": "ready", "rows": 7}'),
    }
    with postgres_server(("airflow", "warehouse")) as urls, capture_server(routes) as outside:
        extra_env = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"].replace("postgresql://", "postgresql+psycopg://"),
            "AIRFLOW_CONN_WAREHOUSE": urls["warehouse"],
            "AIRFLOW_CONN_EXAMPLE_API": outside.url,
            "AIRFLOW_CONN_EXAMPLE_EXPORT_API": outside.url,
            "AIRFLOW_CONN_SLACK_ALERTS": json.dumps(
                {"conn_type": "slackwebhook", "host": f"{outside.url}/services", "password": "T000/B000/test"}
            ),
        }
        with airflow_stack(project, home, extra_env) as stack:
            stack.outside = outside
            yield stack


def test_local_executor_runs_the_examples_end_to_end(local_stack):
    local_stack.wait_for_dags(set(RUNS))
    run_ids = {dag_id: local_stack.trigger(dag_id, logical_date) for dag_id, logical_date in RUNS.items()}
    states = {dag_id: local_stack.wait_for_run(dag_id, run_id) for dag_id, run_id in run_ids.items()}
    assert states == dict.fromkeys(RUNS, "success"), {
        dag_id: [(ti["task_id"], ti["state"]) for ti in local_stack.task_instances(dag_id, run_ids[dag_id])]
        for dag_id, state in states.items()
        if state != "success"
    }
    mapped = local_stack.task_instances("example_dynamic_mapping", run_ids["example_dynamic_mapping"])
    assert sum(1 for ti in mapped if ti["task_id"] == "process") == 24
    # The sensor deferred, and the triggerer process, not a worker, ran its trigger.
    task_logs = local_stack.home / "logs" / "dag_id=example_deferrable_sensor"
    task_logs = task_logs / f"run_id={run_ids['example_deferrable_sensor']}" / "task_id=wait_for_export"
    assert "Pausing task as DEFERRED" in (task_logs / "attempt=1.log").read_text()
    trigger_logs = [path.read_text() for path in task_logs.glob("attempt=1.log.trigger.*.log")]
    assert trigger_logs and '"filename":"triggerer_job_runner.py"' in trigger_logs[0]
    assert any(request.path.startswith("/exports/") for request in local_stack.outside.requests)
