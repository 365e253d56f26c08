"""scripts/dag_health.py against a local server that answers as Airflow's REST API v2 does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from scripts import airflow_api, dag_health

from local_servers import Reply, Request, Server, serve

TOKEN = "header.payload.signature"
PASSWORD = "correct horse"


def run(dag_id: str, state: str, duration: float | None) -> dict:
    return {"dag_id": dag_id, "dag_run_id": f"{dag_id}-{state}-{duration}", "state": state, "duration": duration}


def task(dag_id: str, task_id: str, state: str | None, duration: float | None) -> dict:
    return {"dag_id": dag_id, "task_id": task_id, "state": state, "duration": duration, "map_index": -1}


# Two pages each, as the API's cursor pagination returns them.
RUNS = [
    [run("etl", "success", 10.0), run("etl", "success", 20.0), run("report", "running", None)],
    [run("etl", "failed", 30.0)],
]
TASK_INSTANCES = [
    [
        task("etl", "extract", "success", 1.0),
        task("etl", "extract", "success", 2.0),
        task("etl", "extract", "success", 3.0),
        task("etl", "load", "success", 10.0),
        task("report", "render", "running", None),
        task("report", "publish", None, None),
    ],
    [task("etl", "load", "success", 12.0), task("etl", "load", "failed", 40.0), task("etl", "extract", "success", 3.0)],
]


def rest_api(request: Request) -> Reply:
    """/auth/token, and the dagRuns and taskInstances collections with the API's cursor pagination."""
    if request.method == "POST":
        good = request.path == "/auth/token" and request.json() == {"username": "admin", "password": PASSWORD}
        return Reply(201, {"access_token": TOKEN}) if good else Reply(401, {"detail": "Invalid credentials"})
    if "Authorization" not in request.headers:
        return Reply(401, {"detail": "Not authenticated"})
    if request.headers["Authorization"] != f"Bearer {TOKEN}":
        return Reply(403, {"detail": "Invalid JWT token"})  # as Airflow answers a token it cannot verify
    pages, key = (RUNS, "dag_runs") if request.path.endswith("/dagRuns") else (TASK_INSTANCES, "task_instances")
    dag_id = request.path.split("/")[4]
    page = int(request.query["cursor"][0] or 0)
    items = [item for item in pages[page] if dag_id in ("~", item["dag_id"])]
    return Reply(200, {key: items, "next_cursor": str(page + 1) if page + 1 < len(pages) else None})


@pytest.fixture
def api() -> Iterator[Server]:
    with serve(rest_api) as server:
        yield server


def environ(api: Server, **extra: str) -> dict[str, str]:
    return {"AIRFLOW_API_URL": api.url, "AIRFLOW_API_TOKEN": TOKEN, **extra}


def report(api: Server, capsys, *args: str) -> dict:
    assert dag_health.main(["--json", *args], environ(api)) == 0
    return json.loads(capsys.readouterr().out)


def test_percentile_interpolates_like_postgres_percentile_cont():
    assert dag_health.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert dag_health.percentile([1.0, 2.0, 3.0, 4.0], 0.95) == pytest.approx(3.85)
    assert dag_health.percentile([7.0], 0.95) == 7.0


def test_report_counts_states_failures_and_durations_across_pages(api, capsys):
    document = report(api, capsys)
    etl, dashboard = document["dags"]
    assert etl["dag_id"] == "etl", "the DAG with failures comes first"
    assert etl["runs"] == 3 and etl["runs_by_state"] == {"failed": 1, "success": 2} and etl["failed_runs"] == 1
    assert etl["run_duration_seconds"] == {"p50": 20.0, "p95": 29.0, "max": 30.0}
    assert etl["task_instances"] == 7 and etl["task_instances_by_state"] == {"failed": 1, "success": 6}
    assert etl["failed_task_instances"] == 1
    assert [slow["task_id"] for slow in etl["slowest_tasks"]] == ["load", "extract"]
    assert etl["slowest_tasks"][0] == {"task_id": "load", "count": 3, "p50": 12.0, "p95": 37.2, "max": 40.0}

    assert dashboard["dag_id"] == "report"
    assert dashboard["runs_by_state"] == {"running": 1} and dashboard["run_duration_seconds"] is None
    assert dashboard["task_instances_by_state"] == {"none": 1, "running": 1}
    assert dashboard["slowest_tasks"] == []


def test_the_lookback_window_is_sent_as_run_after(api, capsys):
    before = datetime.now(UTC)
    document = report(api, capsys, "--hours", "6")
    assert document["lookback_hours"] == 6
    listings = [request.query for request in api.requests if request.method == "GET"]
    assert len(listings) == 4, "two collections, two pages each"
    for query in listings:
        since = datetime.fromisoformat(query["run_after_gte"][0])
        assert timedelta(hours=6) <= before - since + timedelta(seconds=5) <= timedelta(hours=6, seconds=10)
        assert query["limit"] == ["100"]


def test_dag_id_limits_the_report_and_keeps_a_dag_without_runs(api, capsys):
    document = report(api, capsys, "--dag-id", "etl", "--dag-id", "quiet")
    assert [dag["dag_id"] for dag in document["dags"]] == ["etl", "quiet"]
    assert document["dags"][1]["runs"] == 0 and document["dags"][1]["run_duration_seconds"] is None
    paths = {request.path for request in api.requests if request.method == "GET"}
    assert paths == {
        "/api/v2/dags/etl/dagRuns",
        "/api/v2/dags/etl/dagRuns/~/taskInstances",
        "/api/v2/dags/quiet/dagRuns",
        "/api/v2/dags/quiet/dagRuns/~/taskInstances",
    }


def test_table_for_people(api, capsys):
    assert dag_health.main(["--slowest", "1"], environ(api)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"DAG health over the last 24 h, from {api.url}"
    header = lines[2].split()
    assert header[:5] == ["DAG", "RUNS", "FAILED", "RUN", "P50"]
    etl = next(line for line in lines if line.startswith("etl "))
    assert etl.split()[:5] == ["etl", "3", "1", "20.0s", "29.0s"]
    assert "success 2, failed 1" in etl and "success 6, failed 1" in etl
    assert lines[lines.index("Slowest tasks (p95 of their durations):") + 1].split() == ["etl", "load", "37.2s"]


def test_credentials_are_exchanged_for_a_jwt(api, capsys):
    env = {"AIRFLOW_API_URL": api.url, "AIRFLOW_API_USERNAME": "admin", "AIRFLOW_API_PASSWORD": PASSWORD}
    assert dag_health.main(["--json"], env) == 0
    assert json.loads(capsys.readouterr().out)["dags"]
    assert (api.requests[0].method, api.requests[0].path) == ("POST", "/auth/token")


@pytest.mark.parametrize(
    ("credentials", "answer"),
    [
        ({"AIRFLOW_API_TOKEN": "forged.jwt.token"}, "HTTP 403 Invalid JWT token"),
        ({"AIRFLOW_API_USERNAME": "admin", "AIRFLOW_API_PASSWORD": "wrong"}, "HTTP 401 Invalid credentials"),
    ],
    ids=["bad-token", "bad-password"],
)
def test_rejected_credentials_fail_with_the_reason(api, capsys, credentials, answer):
    assert dag_health.main([], {"AIRFLOW_API_URL": api.url, **credentials}) == 1
    output = capsys.readouterr()
    assert output.out == ""
    assert "rejected the credentials" in output.err and answer in output.err
    assert not any(secret in output.err for secret in credentials.values())


def test_an_unreachable_api_fails_with_the_reason(capsys, monkeypatch):
    monkeypatch.setattr(airflow_api, "DEFAULT_RETRY", airflow_api.RetryPolicy(attempts=2, first_delay=0))
    with serve(rest_api) as closed:
        url = closed.url
    assert dag_health.main([], {"AIRFLOW_API_URL": url, "AIRFLOW_API_TOKEN": TOKEN}) == 1
    error = capsys.readouterr().err
    assert f"cannot reach {url}" in error and "Is the api-server running" in error


def test_a_role_without_read_access_is_told_so(capsys):
    with serve(lambda request: Reply(403, {"detail": "Forbidden"})) as server:
        assert dag_health.main([], {"AIRFLOW_API_URL": server.url, "AIRFLOW_API_TOKEN": TOKEN}) == 1
    assert "may not read DAG runs" in capsys.readouterr().err and len(server.requests) == 1


def test_missing_settings_fail_before_any_request(capsys):
    assert dag_health.main([], {}) == 1
    assert "AIRFLOW_API_URL" in capsys.readouterr().err
