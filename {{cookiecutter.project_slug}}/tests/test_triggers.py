"""HttpConditionTrigger against a real local HTTP server, with a fake clock: its serialization and its polls."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta

import pytest
from airflow.sdk.serde import deserialize, serialize

from {{ cookiecutter.project_slug }}.triggers import HttpConditionTrigger

from local_servers import Reply, Server, free_port, serve
from trigger_runs import (
    CONN_ID,
    CONN_VARIABLE,
    READY,
    START,
    FakeTime,
    collect_events,
    export_api,
    make_trigger,
    run_trigger,
)


@pytest.fixture
def api(monkeypatch) -> Iterator[Server]:
    with export_api(monkeypatch) as server:
        yield server


@pytest.fixture
def closed_port(monkeypatch) -> int:
    port = free_port()
    monkeypatch.setenv(CONN_VARIABLE, f"http://127.0.0.1:{port}")
    return port


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
                stack.enter_context(serve(Reply(200, READY), port=closed_port))

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
