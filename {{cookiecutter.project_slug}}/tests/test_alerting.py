"""Alert content, routing, unconfigured and failing channels, and deadlines.

Callbacks get the context a worker builds: a real DAG, task, task instance and DAG run. Routing is
tested with recording channels in place of the project's, so these tests hold whichever channels
were chosen; each chosen channel has its own test file that sends through the real provider to a
local server (test_slack_alerts.py, test_email_alerts.py, test_pagerduty_alerts.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag
from airflow.sdk.log import mask_secret
from airflow.serialization.decoders import decode_deadline_alert
from airflow.serialization.serialized_objects import DagSerialization

from {{ cookiecutter.project_slug }} import alerting, project_settings
from {{ cookiecutter.project_slug }}.alerting import callbacks, finish_within, on_failure, on_retry, on_success

from alert_contexts import FINAL_TRY, RUN_ID, run_deadline_callback, task_context


class RecordingChannel(SimpleNamespace):
    """A channel that keeps what it is sent, or fails every send once broken."""

    def __init__(self, conn_id: str) -> None:
        super().__init__(CONN_ID=conn_id, CONNECTION_EXAMPLE=f"{conn_id} example", alerts=[], notices=[], broken=False)

    def send(self, alert: alerting.Alert, context: Any) -> None:
        if self.broken:
            raise ConnectionError("the service refused the message")
        self.alerts.append(alert)

    async def send_notice(self, subject: str, text: str, context: Any) -> None:
        if self.broken:
            raise ConnectionError("the service refused the message")
        self.notices.append(text)


@pytest.fixture
def channels(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A chat and a pager channel in place of the project's, both with a connection defined."""
    chat, pager = RecordingChannel("test_chat"), RecordingChannel("test_pager")
    monkeypatch.setattr(alerting, "CHAT", {"chat": chat})
    monkeypatch.setattr(alerting, "PAGER", {"pager": pager})
    monkeypatch.setenv("AIRFLOW_CONN_TEST_CHAT", "http://127.0.0.1:1")
    monkeypatch.setenv("AIRFLOW_CONN_TEST_PAGER", "http://127.0.0.1:1")
    return SimpleNamespace(chat=chat, pager=pager)


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Each test starts like a new process: no missing connection reported yet."""
    monkeypatch.setattr(alerting, "_reported_missing", set())
    caplog.set_level(logging.INFO, logger=alerting.log.name)


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == alerting.log.name and r.levelno == level]


def test_the_channels_are_the_ones_chosen_for_the_project():
    chosen = [name for name in (project_settings.CHAT_CHANNEL,) if name != "none"]
    assert list(alerting.CHAT) == chosen
    assert list(alerting.PAGER) == [name for name in (project_settings.PAGER_CHANNEL,) if name != "none"]
    for name, channel in {**alerting.CHAT, **alerting.PAGER}.items():
        assert channel.__name__ == f"{alerting.__package__}.{name}_alerts"
        assert channel.CONN_ID and callable(channel.send)
        assert f"AIRFLOW_CONN_{channel.CONN_ID.upper()}=" in channel.CONNECTION_EXAMPLE
    assert all(callable(channel.send_notice) for channel in alerting.CHAT.values())


def test_callbacks_are_what_default_args_merges_in():
    assert callbacks() == {
        "on_failure_callback": on_failure,
        "on_retry_callback": on_retry,
        "on_success_callback": on_success,
    }


def test_an_alert_names_the_task_run_try_log_and_error():
    alert = alerting.Alert.from_context(alerting.FAILED, task_context(try_number=2, error=ValueError("boom")))

    assert alert.subject == "orders.load failed (try 2 of 4)"
    assert alert.details["Run"] == RUN_ID
    assert alert.details["Date"] == "logical date 2026-01-02T00:00:00+00:00"
    assert alert.details["Log"].endswith(f"/dags/orders/runs/{quote(RUN_ID)}/tasks/load?try_number=2")
    assert alert.details["Error"] == "ValueError: boom"
    assert alert.text.splitlines() == [alert.subject, *(f"{k}: {v}" for k, v in alert.details.items())]


def test_a_run_without_logical_date_is_dated_by_run_after():
    alert = alerting.Alert.from_context(alerting.FAILED, task_context(logical_date=None))

    assert alert.details["Date"] == "run after 2026-01-02T00:00:00+00:00"


def test_a_mapped_task_is_named_with_its_index():
    alert = alerting.Alert.from_context(alerting.FAILED, task_context(map_index=7))

    assert alert.subject.startswith("orders.load[7] failed")
    assert alert.key == f"orders/{RUN_ID}/load[7]"


def test_a_long_error_is_cut_short():
    alert = alerting.Alert.from_context(alerting.FAILED, task_context(error=RuntimeError("x" * 5000)))

    assert len(alert.details["Error"]) == alerting.MAX_ERROR_CHARS
    assert alert.details["Error"].startswith("RuntimeError: xxx")
    assert alert.details["Error"].endswith("...")


def test_secrets_airflow_masks_in_logs_are_masked_in_alerts():
    # A connection password or a sensitive Variable, as a task would have read it.
    mask_secret("s3cr3t-token-6f1d2a")
    error = RuntimeError("login with s3cr3t-token-6f1d2a refused")

    alert = alerting.Alert.from_context(alerting.FAILED, task_context(error=error))

    assert "s3cr3t-token-6f1d2a" not in alert.text
    assert alert.details["Error"] == "RuntimeError: login with *** refused"


def test_url_query_strings_are_cut_from_alerts():
    error = RuntimeError("GET https://api.example.com/v1/orders?api_key=k-93ab&date=2026-01-01 failed 4 times")

    alert = alerting.Alert.from_context(alerting.FAILED, task_context(error=error))

    assert "k-93ab" not in alert.text
    assert alert.details["Error"] == "RuntimeError: GET https://api.example.com/v1/orders?... failed 4 times"
    # The log link is the alert's own: its try_number stays.
    assert alert.details["Log"].endswith("?try_number=4")


ROUTES = [
    pytest.param(on_failure, ("critical",), FINAL_TRY, True, True, id="critical failure posts and pages"),
    pytest.param(on_failure, ("finance",), FINAL_TRY, True, False, id="other failure only posts"),
    pytest.param(on_retry, ("critical",), 1, True, False, id="retry only posts, even when critical"),
    pytest.param(on_success, ("critical",), 2, True, True, id="critical recovery posts and resolves"),
    pytest.param(on_success, ("critical",), 1, False, False, id="first-try success is silent"),
    pytest.param(on_success, ("finance",), 2, False, False, id="other recovery is silent"),
]


@pytest.mark.parametrize(("callback", "tags", "try_number", "posts", "pages"), ROUTES)
def test_severity_routing(callback, tags, try_number, posts, pages, channels, caplog):
    callback(task_context(tags=tags, try_number=try_number, error=ValueError("boom")))

    assert len(channels.chat.alerts) == int(posts)
    assert len(channels.pager.alerts) == int(pages)
    assert logged(caplog, logging.ERROR) == logged(caplog, logging.WARNING) == []


def test_a_channel_without_a_connection_warns_once_per_process_and_never_errs(channels, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_TEST_CHAT")

    for _ in range(3):
        on_retry(task_context(try_number=1))
    on_failure(task_context(tags=("critical",)))

    assert channels.chat.alerts == []
    assert len(channels.pager.alerts) == 1
    assert logged(caplog, logging.ERROR) == []
    [warning] = logged(caplog, logging.WARNING)
    assert warning.startswith("Alert channel chat is off: connection 'test_chat' is not defined.")
    assert "AIRFLOW_CONN_TEST_CHAT" in warning and "test_chat example" in warning


def test_a_configured_channel_that_fails_is_an_error_and_the_other_still_gets_the_alert(channels, caplog):
    channels.chat.broken = True

    on_failure(task_context(tags=("critical",)))
    on_failure(task_context(tags=("critical",)))

    assert len(channels.pager.alerts) == 2
    errors = logged(caplog, logging.ERROR)
    assert errors == [f"Alert channel chat failed to send 'failed' for orders/{RUN_ID}/load"] * 2


def test_finish_within_is_a_queued_at_deadline_the_scheduler_can_store():
    alert = finish_within(minutes=90)

    @dag(schedule=None, deadline=alert, tags=["test"])
    def slow_orders():
        EmptyOperator(task_id="load")

    built = slow_orders()
    [stored] = [decode_deadline_alert(encoded) for encoded in DagSerialization.to_dict(built)["dag"]["deadline"]]

    assert built.deadline == [alert]
    assert type(stored.reference).__name__ == "DagRunQueuedAtDeadline"
    assert stored.interval == timedelta(minutes=90)
    assert stored.callback == alert.callback
    assert stored.callback.path == f"{alerting.__name__}.notify_deadline_missed"
    assert stored.callback.kwargs == {"minutes": 90}


@pytest.mark.parametrize("minutes", [0, -5])
def test_finish_within_needs_a_positive_number_of_minutes(minutes):
    with pytest.raises(ValueError, match="positive"):
        finish_within(minutes=minutes)


def run_missed_deadline() -> list[dict[str, Any]]:
    callback = finish_within(minutes=90).callback
    return run_deadline_callback(callback.path, callback.kwargs)


def test_a_missed_deadline_is_posted_to_chat_through_the_triggerer_path(channels):
    events = run_missed_deadline()

    assert [event["state"] for event in events] == ["running", "success"]
    [notice] = channels.chat.notices
    assert "orders run missed its deadline: not finished 90 minutes after it was queued." in notice
    assert f"Run: {RUN_ID}" in notice
    assert "Deadline: 2026-01-02 01:30:00+00:00" in notice
    assert channels.pager.notices == []


@pytest.mark.parametrize("chat", ["none chosen", "no connection"])
def test_a_missed_deadline_without_a_chat_channel_goes_to_the_triggerer_log(chat, channels, monkeypatch, caplog):
    if chat == "none chosen":
        monkeypatch.setattr(alerting, "CHAT", {})
    else:
        monkeypatch.delenv("AIRFLOW_CONN_TEST_CHAT")

    events = run_missed_deadline()

    assert [event["state"] for event in events] == ["running", "success"]
    assert any("orders run missed its deadline" in message for message in logged(caplog, logging.WARNING))


def test_a_missed_deadline_that_cannot_be_sent_fails_the_callback(channels):
    channels.chat.broken = True

    events = run_missed_deadline()

    assert [event["state"] for event in events] == ["running", "failed"]
