"""HttpConditionTrigger against real local HTTP(S) servers, with a fake clock; and the sensor that defers to it."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow.sdk.serde import deserialize, serialize

from {{ cookiecutter.project_slug }}.connections import MissingConnectionError
from {{ cookiecutter.project_slug }}.sensors import HttpConditionSensor
from {{ cookiecutter.project_slug }}.triggers import HttpConditionTrigger

from local_servers import Certificates, Reply, Server, free_port, make_certificates, serve

START = datetime(2026, 1, 1, tzinfo=UTC)
READY = {"state": "ready", "rows": 3}
CONN_ID = "export_api"
CONN_VARIABLE = "AIRFLOW_CONN_EXPORT_API"


@pytest.fixture
def api(monkeypatch) -> Iterator[Server]:
    with serve() as server:
        server.default = Reply(200, READY)
        monkeypatch.setenv(CONN_VARIABLE, server.url)
        yield server


@pytest.fixture
def closed_port(monkeypatch) -> int:
    port = free_port()
    monkeypatch.setenv(CONN_VARIABLE, f"http://127.0.0.1:{port}")
    return port


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


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


def make_trigger(endpoint: str = "exports/2026-01-01", **overrides) -> HttpConditionTrigger:
    kwargs = {
        "http_conn_id": CONN_ID,
        "endpoint": endpoint,
        "started_at": START,
        "timeout": 10.0,
        "poll_interval": 2.0,
        "json_field": "state",
        "expected_value": "ready",
        "request_timeout": 5.0,
        **overrides,
    }
    return HttpConditionTrigger(**kwargs)


def run_trigger(trigger: HttpConditionTrigger, fake_time: FakeTime | None = None) -> list[dict]:
    fake_time = fake_time or FakeTime(START)
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
    classpath, _ = make_trigger().serialize()
    assert classpath == "{{ cookiecutter.project_slug }}.triggers.HttpConditionTrigger"
    assert load_class(classpath) is HttpConditionTrigger


def test_trigger_rebuilt_from_serialize_serializes_the_same():
    original = make_trigger(json_field="job.state", expected_value={"nested": [1, 2]})
    classpath, kwargs = original.serialize()
    assert load_class(classpath)(**kwargs).serialize() == (classpath, kwargs)


def test_trigger_survives_the_encoding_a_deferring_task_uses():
    # The task runner encodes kwargs with serde before they travel to the triggerer.
    classpath, kwargs = make_trigger().serialize()
    decoded = deserialize(json.loads(json.dumps(serialize(kwargs))))
    rebuilt = load_class(classpath)(**decoded)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert rebuilt.deadline == START + timedelta(seconds=10)


def test_naive_start_time_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        make_trigger(started_at=datetime(2026, 1, 1))


# --- polling -------------------------------------------------------------------------------


def test_success_after_a_few_polls_carries_the_payload(api):
    api.queue(Reply(404, {}), Reply(503, {}), Reply(200, {"state": "running"}), Reply(200, READY))
    fake_time = FakeTime(START)

    events = run_trigger(make_trigger(), fake_time)

    assert events == [{"status": "success", "payload": READY, "polls": 4}]
    assert api.paths == ["/exports/2026-01-01"] * 4
    assert fake_time.sleeps == [2.0, 2.0, 2.0]


def test_status_alone_is_the_condition_without_a_json_field(api):
    api.queue(Reply(503, b"busy", "text/plain"), Reply(200, b"OK, not JSON", "text/plain"))

    assert run_trigger(make_trigger(json_field=None)) == [{"status": "success", "payload": None, "polls": 2}]


def test_nested_json_field_is_matched(api):
    api.queue(Reply(200, {"job": {"state": "running"}}), Reply(200, {"job": {"state": "done"}}))

    events = run_trigger(make_trigger(json_field="job.state", expected_value="done"))

    assert events == [{"status": "success", "payload": {"job": {"state": "done"}}, "polls": 2}]


def test_condition_never_met_times_out_at_the_deadline(api):
    api.default = Reply(200, {"state": "running"})
    fake_time = FakeTime(START)

    events = run_trigger(make_trigger(timeout=5.0, poll_interval=2.0), fake_time)

    assert len(events) == 1
    assert events[0]["status"] == "timeout"
    assert "state='running'" in events[0]["message"]
    # Polls at 0, 2, 4 and, clipped to the deadline, 5 seconds.
    assert events[0]["polls"] == 4
    assert fake_time.sleeps == [2.0, 2.0, 1.0]
    assert fake_time.now == START + timedelta(seconds=5)


def test_unreachable_server_is_not_yet_until_the_deadline(closed_port):
    events = run_trigger(make_trigger(timeout=5.0))

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
                stack.enter_context(serve(port=closed_port)).default = Reply(200, READY)

        trigger = make_trigger()
        trigger.clock = fake_time.clock
        trigger.sleep = sleep_then_start_the_server
        events = asyncio.run(collect_events(trigger))

    assert events == [{"status": "success", "payload": READY, "polls": 3}]


def test_deadline_holds_for_a_trigger_rebuilt_after_a_restart(api):
    # A triggerer restart rebuilds the trigger from its kwargs; the wait does not start over.
    api.default = Reply(200, {"state": "running"})
    fake_time = FakeTime(START + timedelta(seconds=60))

    events = run_trigger(make_trigger(timeout=10.0), fake_time)

    assert [event["status"] for event in events] == ["timeout"]
    assert events[0]["polls"] == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize("status", [400, 405, 410])
def test_a_wrong_request_is_an_error_no_retry_can_fix(api, status):
    api.default = Reply(status, {"detail": "no", "echo": "token-51c0"})
    fake_time = FakeTime(START)

    [event] = run_trigger(make_trigger(), fake_time)

    assert event["status"] == "error" and event["retryable"] is False
    assert f"answered {status}" in event["message"] and "token-51c0" not in event["message"]
    assert fake_time.sleeps == []


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_an_error_a_retry_may_fix(api, status):
    api.default = Reply(status, {"detail": "no"})

    [event] = run_trigger(make_trigger())

    assert event["status"] == "error" and event["retryable"] is True
    assert f"the credentials of connection '{CONN_ID}' were refused" in event["message"]


def test_unusable_url_is_an_error(monkeypatch):
    monkeypatch.setenv(CONN_VARIABLE, json.dumps({"conn_type": "http", "host": "ftp://127.0.0.1/files"}))

    [event] = run_trigger(make_trigger())

    assert event["status"] == "error" and event["retryable"] is False


def test_a_connection_the_triggerer_cannot_find_is_an_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv(CONN_VARIABLE, raising=False)

    [event] = run_trigger(make_trigger())

    assert event["status"] == "error" and event["retryable"] is False
    assert f"Connection '{CONN_ID}' is not defined: set {CONN_VARIABLE}" in event["message"]
    assert "The triggerer needs it" in event["message"]


def test_query_strings_stay_out_of_events(api):
    api.default = Reply(200, {"state": "running"})

    [event] = run_trigger(make_trigger(endpoint="exports/x?api_key=key-7a2e", timeout=1.0))

    assert event["status"] == "timeout"
    assert "key-7a2e" not in event["message"] and "/exports/x?..." in event["message"]


# --- the connection's settings in the triggerer -------------------------------------------


def test_basic_auth_and_header_extras_are_sent(api, monkeypatch):
    extra = {"X-Team": "data", "Authorization-Scope": "exports"}
    connection = {"conn_type": "http", "host": api.url, "login": "user", "password": "pw", "extra": extra}
    monkeypatch.setenv(CONN_VARIABLE, json.dumps(connection))

    assert run_trigger(make_trigger())[0]["status"] == "success"

    [request] = api.requests
    assert request.headers["Authorization"] == "Basic dXNlcjpwdw=="
    assert request.headers["X-Team"] == "data" and request.headers["Authorization-Scope"] == "exports"


def test_an_https_connection_is_verified_with_its_ca_bundle(certificates, monkeypatch):
    with serve(tls=certificates.server_context) as api:
        api.default = Reply(200, READY)
        monkeypatch.setenv(CONN_VARIABLE, f"{api.url}?verify={certificates.ca_file}")

        assert run_trigger(make_trigger())[0]["status"] == "success"
        assert api.paths == ["/exports/2026-01-01"]


def test_an_https_server_the_connection_does_not_trust_is_never_ready(certificates, monkeypatch):
    with serve(tls=certificates.server_context) as api:
        monkeypatch.setenv(CONN_VARIABLE, api.url)

        [event] = run_trigger(make_trigger(timeout=1.0))

        assert event["status"] == "timeout" and "not reachable (ConnectError)" in event["message"]
        assert api.requests == []


def test_the_proxy_extra_routes_the_polls(monkeypatch):
    with serve() as proxy:
        proxy.default = Reply(200, READY)
        connection = {"conn_type": "http", "host": "http://exports.invalid", "extra": {"proxy": proxy.url}}
        monkeypatch.setenv(CONN_VARIABLE, json.dumps(connection))

        assert run_trigger(make_trigger())[0]["status"] == "success"
        assert proxy.paths == ["http://exports.invalid/exports/2026-01-01"]


def test_a_malformed_extra_is_an_error_naming_it(monkeypatch):
    connection = {"conn_type": "http", "host": "http://127.0.0.1:1", "extra": {"verify": 3}}
    monkeypatch.setenv(CONN_VARIABLE, json.dumps(connection))

    [event] = run_trigger(make_trigger())

    assert event["status"] == "error" and "connection 'export_api': extra 'verify'" in event["message"]


# --- the sensor ----------------------------------------------------------------------------


@pytest.fixture
def sensor() -> HttpConditionSensor:
    return HttpConditionSensor(
        task_id="wait_for_export",
        http_conn_id=CONN_ID,
        endpoint="exports/{% raw %}{{ run_id }}{% endraw %}",
        json_field="state",
        expected_value="ready",
        poke_interval=30,
        timeout=timedelta(hours=1),
    )


def test_sensor_defers_at_once_to_a_trigger_holding_only_the_connection_id(sensor, api):
    sensor.render_template_fields(context={"run_id": "2026-01-01"})
    before = datetime.now(UTC)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})

    assert deferred.value.method_name == "execute_complete"
    trigger = deferred.value.trigger
    assert isinstance(trigger, HttpConditionTrigger)
    assert (trigger.http_conn_id, trigger.endpoint) == (CONN_ID, "exports/2026-01-01")
    assert (trigger.poll_interval, trigger.timeout) == (30.0, 3600.0)
    assert (trigger.json_field, trigger.expected_value) == ("state", "ready")
    assert before <= trigger.started_at <= datetime.now(UTC)
    # The triggerer's own timeout is only a backstop behind the trigger's timeout event.
    assert deferred.value.timeout > timedelta(hours=1)
    # Deferring is all execute does: the wait itself has not polled yet.
    assert api.requests == []


def test_the_deferred_trigger_stores_no_secret_of_the_connection(sensor, monkeypatch):
    # Trigger kwargs are stored in the metadata DB and shown in the UI: only the id may go there.
    extra = {"Authorization": "Bearer tok-9e1f"}
    connection = {"conn_type": "http", "host": "https://api.example.com", "login": "u", "password": "pw-2b7c"}
    monkeypatch.setenv(CONN_VARIABLE, json.dumps({**connection, "extra": extra}))

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})

    _, kwargs = deferred.value.trigger.serialize()
    stored = json.dumps(serialize(kwargs))
    assert kwargs["http_conn_id"] == CONN_ID
    assert "pw-2b7c" not in stored and "tok-9e1f" not in stored and "api.example.com" not in stored


def test_sensor_fails_at_once_without_its_connection(sensor, monkeypatch):
    monkeypatch.delenv(CONN_VARIABLE, raising=False)

    with pytest.raises(MissingConnectionError, match=CONN_VARIABLE):
        sensor.execute(context={})


def test_execute_complete_returns_the_payload(sensor):
    assert sensor.execute_complete({}, {"status": "success", "payload": READY, "polls": 2}) == READY


def test_execute_complete_raises_sensor_timeout_on_timeout(sensor):
    with pytest.raises(AirflowSensorTimeout, match="did not meet"):
        sensor.execute_complete({}, {"status": "timeout", "message": "x did not meet the condition"})


def test_a_wrong_request_fails_without_retry(sensor):
    with pytest.raises(AirflowFailException, match="answered 400"):
        sensor.execute_complete({}, {"status": "error", "message": "x answered 400", "retryable": False})


def test_refused_credentials_fail_the_try_and_leave_the_retries(sensor):
    with pytest.raises(AirflowException, match="answered 401") as failure:
        sensor.execute_complete({}, {"status": "error", "message": "x answered 401", "retryable": True})
    assert not isinstance(failure.value, AirflowFailException)


def test_soft_fail_turns_a_timeout_into_a_skip(sensor):
    sensor.soft_fail = True
    event = {"status": "timeout", "message": "late"}

    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": event}, context={})
