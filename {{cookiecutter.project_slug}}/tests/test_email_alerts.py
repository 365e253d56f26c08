"""The email channel, through the smtp provider's notifier, to an SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from email import message_from_bytes, policy
from html import unescape
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from {{ cookiecutter.project_slug }} import alerting, email_alerts, project_settings
from {{ cookiecutter.project_slug }}.alerting import on_failure, on_retry

from alert_contexts import RUN_ID, run_deadline_callback, task_context
from local_servers import free_port

# Double braces written so the project template leaves them alone: Jinja in an exception
# text must reach the mail as it was raised, not be rendered.
BRACES = "{" * 2 + " row " + "}" * 2


class Mailbox:
    """An SMTP server's handler that keeps the mail it accepts, or refuses it all once failing."""

    def __init__(self) -> None:
        self.mail: list[tuple[list[str], Any]] = []
        self.failing = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.failing:
            return "554 Transaction failed"
        self.mail.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"

    @property
    def received(self) -> list[str]:
        """Each accepted email as its reader sees it: the subject, then the body without HTML."""
        texts = []
        for _, message in self.mail:
            html = message.get_body(("html",)).get_content().strip()
            texts.append(f"{message['Subject']}\n{unescape(html.removeprefix('<pre>').removesuffix('</pre>'))}")
        return texts


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(alerting, "_reported_missing", set())
    caplog.set_level(logging.INFO, logger=alerting.log.name)


@pytest.fixture
def mailbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        extra = {"from_email": "airflow@example.com", "disable_ssl": True, "disable_tls": True, "retry_limit": 0}
        connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": controller.port, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", json.dumps(connection))
        yield mailbox
    finally:
        controller.stop()


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == alerting.log.name and r.levelno >= logging.ERROR]


def test_email_is_the_projects_chat_channel():
    assert alerting.CHAT == {"email": email_alerts}


def test_a_failure_is_mailed_to_the_team_contact_as_escaped_html(mailbox, caplog):
    on_failure(task_context(error=ValueError(f"bad {BRACES} <b> & co")))

    [(recipients, message)] = mailbox.mail
    assert recipients == [project_settings.CONTACT_EMAIL]
    assert message["From"] == "airflow@example.com"
    assert message["Subject"] == "[Airflow] orders.load failed (try 4 of 4)"
    assert "Error: ValueError: bad " + BRACES + " &lt;b&gt; &amp; co" in message.get_body(("html",)).get_content()
    [text] = mailbox.received
    assert f"Run: {RUN_ID}" in text and "/dags/orders/runs/" in text
    assert errors(caplog) == []


def test_a_mail_outage_is_logged_as_an_error_and_never_raised(mailbox, caplog):
    mailbox.failing = True

    on_failure(task_context())

    assert mailbox.mail == []
    assert errors(caplog) == [f"Alert channel email failed to send 'failed' for orders/{RUN_ID}/load"]


def test_without_the_connection_one_warning_says_how_to_set_it(mailbox, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_ALERTS")

    on_retry(task_context(try_number=1))
    on_failure(task_context())

    assert mailbox.mail == [] and errors(caplog) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "email" in r.getMessage()]
    assert len(warnings) == 1
    assert "connection 'smtp_alerts' is not defined" in warnings[0]
    assert "AIRFLOW_CONN_SMTP_ALERTS=" in warnings[0]


def run_missed_deadline() -> list[dict]:
    callback = alerting.finish_within(minutes=90).callback
    return run_deadline_callback(callback.path, callback.kwargs)


def test_a_missed_deadline_is_mailed_from_the_triggerer(mailbox):
    assert [event["state"] for event in run_missed_deadline()] == ["running", "success"]

    [text] = mailbox.received
    assert text.startswith("[Airflow] orders run missed its deadline\n")
    assert "not finished 90 minutes after it was queued." in text


def test_a_missed_deadline_the_server_refuses_fails_the_callback(mailbox):
    mailbox.failing = True

    assert [event["state"] for event in run_missed_deadline()] == ["running", "failed"]
