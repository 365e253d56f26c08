"""HttpConditionSensor: it defers at once to HttpConditionTrigger, and turns the trigger's event into the task's end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow.sdk.serde import serialize

from {{ cookiecutter.project_slug }}.connections import MissingConnectionError
from {{ cookiecutter.project_slug }}.sensors import HttpConditionSensor
from {{ cookiecutter.project_slug }}.triggers import HttpConditionTrigger

from trigger_runs import CONN_ID, CONN_VARIABLE, READY, export_api


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


def test_sensor_defers_at_once_to_a_trigger_holding_only_the_connection_id(sensor, monkeypatch):
    sensor.render_template_fields(context={"run_id": "2026-01-01"})
    before = datetime.now(UTC)

    with export_api(monkeypatch) as api, pytest.raises(TaskDeferred) as deferred:
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
