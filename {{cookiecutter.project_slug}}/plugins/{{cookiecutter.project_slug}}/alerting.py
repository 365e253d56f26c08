"""Alerts for failed, retried and late DAG runs, sent to the channels chosen for this project.

The channels are project_settings.CHAT_CHANNEL and PAGER_CHANNEL. Each is a module of this
package named ``<channel>_alerts`` (slack_alerts, email_alerts, pagerduty_alerts) that knows its
connection and how to send; a channel chosen as "none" has no module and is skipped.

Routing:
- A task fails: it is posted; in a DAG tagged ``critical`` it also pages.
- A task will be retried: it is posted, never paged. A retry is Airflow riding out a flaky dependency.
- A task succeeds: silent, unless it belongs to a critical DAG and needed more than one try. Then the
  recovery is posted and the page resolved, so whoever was woken up knows it is over.
- A DAG run misses its deadline (``finish_within``): the triggerer posts it.

Each channel is tried on its own, and an alerting error never hides the task's own failure. A
channel whose connection is not defined is skipped with one warning per process that says how to
define it; a defined channel that fails to send is logged as an error.

Alert text can carry an exception message, and exception messages can carry secrets: the text goes
through Airflow's secrets masker, and query strings are cut from the URLs in it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any

from airflow.sdk import AsyncCallback, BaseHook, Context, DeadlineAlert, DeadlineReference
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import redact

from .connections import how_to_define
from .http_connections import without_query_strings
from .project_settings import CHAT_CHANNEL, PAGER_CHANNEL

log = logging.getLogger(__name__)

CRITICAL_TAG = "critical"
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
            error=safe_text(f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error),
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


def safe_text(text: str | None) -> str | None:
    """Text fit for an alert: secrets Airflow knows are masked, URL query strings cut, and at most MAX_ERROR_CHARS."""
    if text is None:
        return None
    text = without_query_strings(str(redact(text)))
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


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


def _channels(name: str) -> dict[str, ModuleType]:
    """The chosen channel by name, with the module that sends to it; none for "none"."""
    return {} if name == "none" else {name: importlib.import_module(f"{__package__}.{name}_alerts")}


# The name is what a skipped or failed delivery is logged under.
CHAT = _channels(CHAT_CHANNEL)
PAGER = _channels(PAGER_CHANNEL)

# Connection ids already reported missing by this process: one warning each, not one per alert.
_reported_missing: set[str] = set()


def _report_missing(name: str, conn_id: str) -> None:
    if conn_id not in _reported_missing:
        _reported_missing.add(conn_id)
        log.warning(
            "Alert channel %s is off: connection %r is not defined. To receive these alerts, %s (%s).",
            name,
            conn_id,
            how_to_define(conn_id),
            _channel_example(name),
        )


def _channel_example(name: str) -> str:
    channel = CHAT.get(name) or PAGER.get(name)
    return getattr(channel, "CONNECTION_EXAMPLE", "see the channel's module")


def channel_is_configured(name: str, channel: ModuleType) -> bool:
    try:
        BaseHook.get_connection(channel.CONN_ID)
    except AirflowNotFoundException:
        _report_missing(name, channel.CONN_ID)
        return False
    return True


async def achannel_is_configured(name: str, channel: ModuleType) -> bool:
    try:
        await BaseHook.aget_connection(channel.CONN_ID)
    except AirflowNotFoundException:
        _report_missing(name, channel.CONN_ID)
        return False
    return True


def _deliver(alert: Alert, context: Context, channels: dict[str, ModuleType]) -> None:
    for name, channel in channels.items():
        try:
            if channel_is_configured(name, channel):
                channel.send(alert, context)
        except Exception:
            log.exception("Alert channel %s failed to send %r for %s", name, alert.event, alert.key)


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
    {"id", "deadline_time"}}``. A channel that fails to send is not swallowed: the triggerer records
    the callback as failed. Without a configured chat channel, the triggerer's log is where it goes.
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
    delivered = False
    for name, channel in CHAT.items():
        if await achannel_is_configured(name, channel):
            await channel.send_notice(subject, text, context or {})
            delivered = True
    if not delivered:
        log.warning(text)
