"""The Slack channel, through the slack provider's webhook notifier, to a webhook on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from {{ cookiecutter.project_slug }} import alerting, slack_alerts
from {{ cookiecutter.project_slug }}.alerting import on_failure, on_retry

from alert_contexts import RUN_ID, run_deadline_callback, task_context
from local_servers import Reply, Server, serve

# Double braces written so the project template leaves them alone: Jinja in an exception
# text must reach Slack as it was raised, not be rendered.
BRACES = "{" * 2 + " row " + "}" * 2


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(alerting, "_reported_missing", set())
    caplog.set_level(logging.INFO, logger=alerting.log.name)


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    with serve() as server:
        server.default = Reply(200, b"ok", "text/plain")
        # SlackWebhookHook joins host and password into the webhook URL when the host has a scheme.
        connection = {"conn_type": "slackwebhook", "host": f"{server.url}/services", "password": "T000/B000/secret"}
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(connection))
        yield server


def posted(webhook: Server) -> list[str]:
    """Each message as Slack shows it: &amp;, &lt; and &gt; turned back into characters."""
    texts = [request.json()["text"] for request in webhook.requests]
    return [text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for text in texts]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == alerting.log.name and r.levelno >= logging.ERROR]


def test_slack_is_the_projects_chat_channel():
    assert alerting.CHAT == {"slack": slack_alerts}


def test_a_retry_is_posted_to_the_connections_webhook_as_raised(webhook, caplog):
    on_retry(task_context(try_number=1, error=ValueError(f"bad {BRACES} <b> & co")))

    [request] = webhook.requests
    assert request.path == "/services/T000/B000/secret"
    assert "Error: ValueError: bad " + BRACES + " &lt;b&gt; &amp; co" in request.json()["text"]
    [message] = posted(webhook)
    assert message.splitlines()[0] == "orders.load failed, will retry (try 1 of 4)"
    assert f"Run: {RUN_ID}" in message and "/dags/orders/runs/" in message
    assert errors(caplog) == []


def test_a_slack_outage_is_logged_as_an_error_and_never_raised(webhook, caplog):
    webhook.default = Reply(500, b"internal_error", "text/plain")

    on_failure(task_context())

    assert errors(caplog) == [f"Alert channel slack failed to send 'failed' for orders/{RUN_ID}/load"]


def test_without_the_connection_one_warning_says_how_to_set_it(webhook, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_ALERTS")

    on_retry(task_context(try_number=1))
    on_failure(task_context())

    assert webhook.requests == [] and errors(caplog) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "slack" in r.getMessage()]
    assert len(warnings) == 1
    assert "connection 'slack_alerts' is not defined" in warnings[0]
    assert "AIRFLOW_CONN_SLACK_ALERTS=" in warnings[0]


def run_missed_deadline() -> list[dict]:
    callback = alerting.finish_within(minutes=90).callback
    return run_deadline_callback(callback.path, callback.kwargs)


def test_a_missed_deadline_is_posted_from_the_triggerer(webhook):
    assert [event["state"] for event in run_missed_deadline()] == ["running", "success"]

    [message] = posted(webhook)
    assert "orders run missed its deadline: not finished 90 minutes after it was queued." in message


def test_a_missed_deadline_slack_refuses_fails_the_callback(webhook):
    webhook.default = Reply(500, b"internal_error", "text/plain")

    assert [event["state"] for event in run_missed_deadline()] == ["running", "failed"]
