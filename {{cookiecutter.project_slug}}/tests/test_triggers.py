"""HttpConditionTrigger against a real local HTTP server, with a fake clock; and the sensor that defers to it."""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException, TaskDeferred
from airflow.sdk.serde import deserialize, serialize

from {{ cookiecutter.project_slug }}.sensors import HttpConditionSensor, base_url, join_url
from {{ cookiecutter.project_slug }}.triggers import HttpConditionTrigger

START = datetime(2026, 1, 1, tzinfo=UTC)
READY = {"state": "ready", "rows": 3}


class ScriptedHandler(BaseHTTPRequestHandler):
    """Answers GETs from server.answers in order; the last answer repeats."""

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        answers = self.server.answers
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve(port: int = 0) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", port), ScriptedHandler)
    server.answers = [(200, READY)]
    server.paths = []
    server.url = f"http://127.0.0.1:{server.server_port}"
    # A short poll interval lets shutdown() return quickly.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def api() -> Iterator[ThreadingHTTPServer]:
    with serve() as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeTime:
    """A clock that only moves when the trigger sleeps, so waits take no real time."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def make_trigger(url: str, **overrides: Any) -> HttpConditionTrigger:
    kwargs = {
        "url": url,
        "started_at": START,
        "timeout": 10.0,
        "poll_interval": 2.0,
        "json_field": "state",
        "expected_value": "ready",
        "request_timeout": 5.0,
        **overrides,
    }
    return HttpConditionTrigger(**kwargs)


def run_trigger(trigger: HttpConditionTrigger, fake_time: FakeTime) -> list[dict]:
    trigger.clock = fake_time.clock
    trigger.sleep = fake_time.sleep
    return asyncio.run(collect_events(trigger))


async def collect_events(trigger: HttpConditionTrigger) -> list[dict]:
    """Every event the trigger yields, as payloads; a single-event trigger yields a list of one."""
    return [event.payload async for event in trigger.run()]


# --- serialization -------------------------------------------------------------------------


def load_class(classpath: str) -> type:
    """Find a trigger class by its import path, as the triggerer does."""
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_serialize_names_the_class_by_its_import_path():
    classpath, _ = make_trigger("http://127.0.0.1:1/x").serialize()
    assert classpath == "{{ cookiecutter.project_slug }}.triggers.HttpConditionTrigger"
    assert load_class(classpath) is HttpConditionTrigger


def test_trigger_rebuilt_from_serialize_serializes_the_same():
    original = make_trigger("http://127.0.0.1:1/x", json_field="job.state", expected_value={"nested": [1, 2]})
    classpath, kwargs = original.serialize()
    assert load_class(classpath)(**kwargs).serialize() == (classpath, kwargs)


def test_trigger_survives_the_encoding_a_deferring_task_uses():
    # The task runner encodes kwargs with serde before they travel to the triggerer.
    classpath, kwargs = make_trigger("http://127.0.0.1:1/x").serialize()
    decoded = deserialize(json.loads(json.dumps(serialize(kwargs))))
    rebuilt = load_class(classpath)(**decoded)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert rebuilt.deadline == START + timedelta(seconds=10)


def test_naive_start_time_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        make_trigger("http://127.0.0.1:1/x", started_at=datetime(2026, 1, 1))


# --- polling -------------------------------------------------------------------------------


def test_success_after_a_few_polls_carries_the_payload(api):
    api.answers = [(404, {}), (503, {}), (200, {"state": "running"}), (200, READY)]
    fake_time = FakeTime(START)

    events = run_trigger(make_trigger(f"{api.url}/exports/2026-01-01"), fake_time)

    assert events == [{"status": "success", "payload": READY, "polls": 4}]
    assert api.paths == ["/exports/2026-01-01"] * 4
    assert fake_time.sleeps == [2.0, 2.0, 2.0]


def test_status_alone_is_the_condition_without_a_json_field(api):
    api.answers = [(503, b"busy"), (200, b"OK, not JSON")]

    events = run_trigger(make_trigger(api.url, json_field=None), FakeTime(START))

    assert events == [{"status": "success", "payload": None, "polls": 2}]


def test_nested_json_field_is_matched(api):
    api.answers = [(200, {"job": {"state": "running"}}), (200, {"job": {"state": "done"}})]

    events = run_trigger(make_trigger(api.url, json_field="job.state", expected_value="done"), FakeTime(START))

    assert events == [{"status": "success", "payload": {"job": {"state": "done"}}, "polls": 2}]


def test_condition_never_met_times_out_at_the_deadline(api):
    api.answers = [(200, {"state": "running"})]
    fake_time = FakeTime(START)

    events = run_trigger(make_trigger(api.url, timeout=5.0, poll_interval=2.0), fake_time)

    assert len(events) == 1
    assert events[0]["status"] == "timeout"
    assert "state='running'" in events[0]["message"]
    # Polls at 0, 2, 4 and, clipped to the deadline, 5 seconds.
    assert events[0]["polls"] == 4
    assert fake_time.sleeps == [2.0, 2.0, 1.0]
    assert fake_time.now == START + timedelta(seconds=5)


def test_unreachable_server_is_not_yet_until_the_deadline(closed_port):
    fake_time = FakeTime(START)

    events = run_trigger(make_trigger(f"http://127.0.0.1:{closed_port}/", timeout=5.0), fake_time)

    assert len(events) == 1
    assert events[0]["status"] == "timeout"
    assert "not reachable" in events[0]["message"]
    assert events[0]["polls"] == 4


def test_server_coming_up_late_still_succeeds(closed_port):
    fake_time = FakeTime(START)
    with ExitStack() as stack:

        async def sleep_then_start_the_server(seconds: float) -> None:
            await fake_time.sleep(seconds)
            if len(fake_time.sleeps) == 2:
                stack.enter_context(serve(closed_port))

        trigger = make_trigger(f"http://127.0.0.1:{closed_port}/")
        trigger.clock = fake_time.clock
        trigger.sleep = sleep_then_start_the_server
        events = asyncio.run(collect_events(trigger))

    assert events == [{"status": "success", "payload": READY, "polls": 3}]


def test_deadline_holds_for_a_trigger_rebuilt_after_a_restart(api):
    # A triggerer restart rebuilds the trigger from its kwargs; the wait does not start over.
    api.answers = [(200, {"state": "running"})]
    fake_time = FakeTime(START + timedelta(seconds=60))

    events = run_trigger(make_trigger(api.url, timeout=10.0), fake_time)

    assert [event["status"] for event in events] == ["timeout"]
    assert events[0]["polls"] == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize("status", [401, 403])
def test_answer_that_waiting_cannot_change_is_an_error(api, status):
    api.answers = [(status, {"detail": "no"})]
    fake_time = FakeTime(START)

    events = run_trigger(make_trigger(api.url), fake_time)

    assert len(events) == 1
    assert events[0]["status"] == "error"
    assert str(status) in events[0]["message"]
    assert fake_time.sleeps == []


def test_unusable_url_is_an_error():
    events = run_trigger(make_trigger("ftp://127.0.0.1/file"), FakeTime(START))

    assert [event["status"] for event in events] == ["error"]


# --- the sensor ----------------------------------------------------------------------------


@pytest.fixture
def sensor(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_EXPORT_API", "http://127.0.0.1:8080")
    return HttpConditionSensor(
        task_id="wait_for_export",
        http_conn_id="export_api",
        endpoint="exports/{% raw %}{{ ds }}{% endraw %}",
        json_field="state",
        expected_value="ready",
        poke_interval=30,
        timeout=timedelta(hours=1),
    )


def test_sensor_defers_at_once_to_the_trigger(sensor, api, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_EXPORT_API", api.url)
    sensor.render_template_fields(context={"ds": "2026-01-01"})
    before = datetime.now(UTC)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})

    assert deferred.value.method_name == "execute_complete"
    trigger = deferred.value.trigger
    assert isinstance(trigger, HttpConditionTrigger)
    assert trigger.url == f"{api.url}/exports/2026-01-01"
    assert (trigger.poll_interval, trigger.timeout) == (30.0, 3600.0)
    assert (trigger.json_field, trigger.expected_value) == ("state", "ready")
    assert before <= trigger.started_at <= datetime.now(UTC)
    # The triggerer's own timeout is only a backstop behind the trigger's timeout event.
    assert deferred.value.timeout > timedelta(hours=1)
    # Deferring is all execute does: the wait itself has not polled yet.
    assert api.paths == []


def test_execute_complete_returns_the_payload(sensor):
    assert sensor.execute_complete({}, {"status": "success", "payload": READY, "polls": 2}) == READY


def test_execute_complete_raises_sensor_timeout_on_timeout(sensor):
    with pytest.raises(AirflowSensorTimeout, match="did not meet"):
        sensor.execute_complete({}, {"status": "timeout", "message": "x did not meet the condition"})


def test_execute_complete_fails_without_retry_on_error(sensor):
    with pytest.raises(AirflowFailException, match="answered 401"):
        sensor.execute_complete({}, {"status": "error", "message": "x answered 401"})


def test_soft_fail_turns_a_timeout_into_a_skip(sensor):
    sensor.soft_fail = True
    event = {"status": "timeout", "message": "late"}

    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": event}, context={})


# --- connection to URL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://api.example.com", "https://api.example.com"),
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        # HttpHook style: the scheme sits in the schema field.
        ("http://api.example.com:8443/https", "https://api.example.com:8443"),
    ],
)
def test_base_url_from_connection_uri(uri, expected):
    assert base_url(Connection.from_uri(uri, conn_id="api")) == expected


def test_base_url_keeps_a_full_url_given_as_host():
    connection = Connection(conn_id="api", conn_type="http", host="https://api.example.com/v2")
    assert base_url(connection) == "https://api.example.com/v2"


@pytest.mark.parametrize(
    ("base", "endpoint", "expected"),
    [
        ("http://h", "a/b", "http://h/a/b"),
        ("http://h/", "a", "http://h/a"),
        ("http://h", "/a", "http://h/a"),
        ("http://h", "", "http://h"),
    ],
)
def test_join_url(base, endpoint, expected):
    assert join_url(base, endpoint) == expected
