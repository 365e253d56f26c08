"""Alerts for failed, retried and late DAG runs, sent to the channels chosen for this project.

Channels:
{%- if cookiecutter.alert_chat == "slack" %}
- chat: Slack incoming webhook, Airflow connection ``slack_alerts``.
{%- elif cookiecutter.alert_chat == "email" %}
- chat: email to the team's contact address through the SMTP connection ``smtp_alerts``.
{%- else %}
- chat: none.
{%- endif %}
{%- if cookiecutter.alert_pager == "pagerduty" %}
- pager: PagerDuty Events API v2, Airflow connection ``pagerduty_alerts`` (integration key as password).
{%- else %}
- pager: none.
{%- endif %}

Routing (a channel chosen as none is skipped):
- A task fails: it is posted; in a DAG tagged ``critical`` it also pages.
- A task will be retried: it is posted, never paged. A retry is Airflow riding out a flaky dependency.
- A task succeeds: silent, unless it belongs to a critical DAG and needed more than one try. Then the
  recovery is posted and the page resolved, so whoever was woken up knows it is over.
- A DAG run misses its deadline (``finish_within``): the triggerer posts it.

Each channel is tried on its own. One that is down is logged and skipped: the other still gets the
alert, and an alerting error never hides the task's own failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
{%- if cookiecutter.alert_chat == "email" %}
from html import escape
{%- endif %}
from typing import Any

from airflow.sdk import AsyncCallback, Context, DeadlineAlert, DeadlineReference

log = logging.getLogger(__name__)

CRITICAL_TAG = "critical"
{%- if cookiecutter.alert_chat == "slack" %}
CHAT_CONN_ID = "slack_alerts"
{%- elif cookiecutter.alert_chat == "email" %}
CHAT_CONN_ID = "smtp_alerts"
{%- endif %}
{%- if cookiecutter.alert_pager == "pagerduty" %}
PAGER_CONN_ID = "pagerduty_alerts"
{%- endif %}
# Enough of the exception to recognise it; the full traceback is one click away in the log.
MAX_ERROR_CHARS = 500

FAILED = "failed"
RETRYING = "failed, will retry"
RECOVERED = "recovered"


@dataclass(frozen=True)
class Alert:
    """What one alert says, read from the context Airflow hands a task callback."""

    event: str
    dag_id: str
    task: str | None
    run_id: str | None
    try_number: int | None
    tries: int | None
    when: str | None
    log_url: str | None
    error: str | None
    critical: bool

    @classmethod
    def from_context(cls, event: str, context: Context) -> Alert:
        dag = context["dag"]
        ti = context.get("ti")
        error = context.get("exception")
        return cls(
            event=event,
            dag_id=dag.dag_id,
            task=_task_label(ti),
            run_id=context.get("run_id"),
            try_number=getattr(ti, "try_number", None),
            tries=ti.max_tries + 1 if ti is not None else None,
            when=_when(context),
            log_url=getattr(ti, "log_url", None),
            error=_truncate(f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error),
            critical=CRITICAL_TAG in dag.tags,
        )

    @property
    def key(self) -> str:
        """Names this task in this run: one page per failing task, resolved by its recovery."""
        return "/".join(part for part in (self.dag_id, self.run_id, self.task) if part)

    @property
    def subject(self) -> str:
        where = f"{self.dag_id}.{self.task}" if self.task else self.dag_id
        tries = f" (try {self.try_number} of {self.tries})" if self.try_number and self.tries else ""
        return f"{where} {self.event}{tries}"

    @property
    def details(self) -> dict[str, str]:
        found = {"Run": self.run_id, "Date": self.when, "Log": self.log_url, "Error": self.error}
        return {label: value for label, value in found.items() if value}

    @property
    def text(self) -> str:
        return "\n".join([self.subject, *(f"{label}: {value}" for label, value in self.details.items())])


def _task_label(ti: Any) -> str | None:
    if ti is None:
        return None
    map_index = getattr(ti, "map_index", None)
    return f"{ti.task_id}[{map_index}]" if map_index is not None and map_index >= 0 else ti.task_id


def _when(context: Context) -> str | None:
    # Manual and asset-triggered runs may have no logical date; run_after is always set.
    if logical_date := context.get("logical_date"):
        return f"logical date {logical_date.isoformat()}"
    if dag_run := context.get("dag_run"):
        return f"run after {dag_run.run_after.isoformat()}"
    return None


def _truncate(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 3] + "..."


Send = Callable[[Alert, Context], None]


def _deliver(alert: Alert, context: Context, channels: dict[str, Send]) -> None:
    for name, send in channels.items():
        try:
            send(alert, context)
        except Exception:
            log.exception("Alert channel %s failed to send %r for %s", name, alert.event, alert.key)
{%- if cookiecutter.alert_chat != "none" %}


def _chat_notifier(subject: str, text: str):
    """The provider notifier that posts one message to the chat channel.

    Callers use its ``notify``/``async_notify`` directly. Calling the notifier itself would first
    render the message as a Jinja template, and an exception text holding braces would then break it.
    The import waits until an alert is sent because DAG files import this module when they are parsed.
    """
{%- endif %}
{%- if cookiecutter.alert_chat == "slack" %}
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    # Slack reads &, < and > as markup; escaped, an exception text shows as it was raised.
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return SlackWebhookNotifier(slack_webhook_conn_id=CHAT_CONN_ID, text=escaped)
{%- elif cookiecutter.alert_chat == "email" %}
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    # dag_defaults imports this module, so the address is read here rather than at import time.
    from {{ cookiecutter.project_slug }}.dag_defaults import CONTACT_EMAIL

    # The sender is the connection's "from_email" extra.
    return SmtpNotifier(
        to=CONTACT_EMAIL,
        subject=f"[Airflow] {subject}",
        html_content=f"<pre>{escape(text)}</pre>",
        smtp_conn_id=CHAT_CONN_ID,
    )
{%- endif %}
{%- if cookiecutter.alert_chat != "none" %}


def _post(alert: Alert, context: Context) -> None:
    _chat_notifier(alert.subject, alert.text).notify(context)
{%- endif %}
{%- if cookiecutter.alert_pager == "pagerduty" %}


def _page(alert: Alert, context: Context) -> None:
    from airflow.providers.pagerduty.notifications.pagerduty import PagerdutyNotifier

    PagerdutyNotifier(
        pagerduty_events_conn_id=PAGER_CONN_ID,
        action="resolve" if alert.event == RECOVERED else "trigger",
        dedup_key=alert.key,
        summary=alert.subject,
        severity="critical",
        source={{ cookiecutter.project_slug | tojson }},
        component=alert.dag_id,
        custom_details=alert.details,
        links=[{"href": alert.log_url, "text": "Task log"}] if alert.log_url else None,
    ).notify(context)
{%- endif %}


# Channels by name: the name is what a failed delivery is logged under.
{%- if cookiecutter.alert_chat == "none" %}
CHAT: dict[str, Send] = {}
{%- else %}
CHAT: dict[str, Send] = {"{{ cookiecutter.alert_chat }}": _post}
{%- endif %}
{%- if cookiecutter.alert_pager == "none" %}
PAGER: dict[str, Send] = {}
{%- else %}
PAGER: dict[str, Send] = {"{{ cookiecutter.alert_pager }}": _page}
{%- endif %}


def on_failure(context: Context) -> None:
    """Task failed for good: post it, and page too if the DAG is tagged critical."""
    alert = Alert.from_context(FAILED, context)
    _deliver(alert, context, {**CHAT, **PAGER} if alert.critical else CHAT)


def on_retry(context: Context) -> None:
    """Task failed and will be retried: post it; retries never page."""
    _deliver(Alert.from_context(RETRYING, context), context, CHAT)


def on_success(context: Context) -> None:
    """Task succeeded: only a critical DAG's task that needed a retry says so, and resolves its page."""
    alert = Alert.from_context(RECOVERED, context)
    if alert.critical and (alert.try_number or 0) > 1:
        _deliver(alert, context, {**CHAT, **PAGER})


def callbacks() -> dict[str, Callable[[Context], None]]:
    """Task callbacks for ``default_args``: every task of every DAG alerts the same way."""
    return {
        "on_failure_callback": on_failure,
        "on_retry_callback": on_retry,
        "on_success_callback": on_success,
    }


def finish_within(*, minutes: int) -> DeadlineAlert:
    """A deadline for a DAG run: alert when it has not finished ``minutes`` after it was queued.

    Airflow 3's replacement for SLAs: ``@dag(deadline=finish_within(minutes=90))``. The scheduler
    notices the miss and the triggerer runs ``notify_deadline_missed``, so a triggerer must be running.
    Deadline Alerts are marked experimental in Airflow 3.3.
    """
    if minutes <= 0:
        raise ValueError(f"a deadline needs a positive number of minutes, got {minutes}")
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=AsyncCallback(notify_deadline_missed, kwargs={"minutes": minutes}),
        name=f"finish within {minutes} minutes",
    )


async def notify_deadline_missed(minutes: int, context: dict[str, Any] | None = None) -> None:
    """Say that a DAG run missed its deadline. Runs in the triggerer's event loop, so it must not block.

    The scheduler passes ``context`` as ``{"dag_run": <the run as the REST API shows it>, "deadline":
    {"id", "deadline_time"}}``. A failure here is not swallowed: the triggerer records the callback as failed.
    """
    dag_run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    subject = f"{dag_run.get('dag_id', 'A DAG')} run missed its deadline"
    text = "\n".join(
        [
            f"{subject}: not finished {minutes} minutes after it was queued.",
            f"Run: {dag_run.get('dag_run_id')}",
            f"Queued: {dag_run.get('queued_at')}",
            f"Deadline: {deadline.get('deadline_time')}",
        ]
    )
{%- if cookiecutter.alert_chat != "none" %}
    await _chat_notifier(subject, text).async_notify(context or {})
{%- else %}
    # No chat channel was chosen: the triggerer's log is the only place this can go.
    log.warning(text)
{%- endif %}
