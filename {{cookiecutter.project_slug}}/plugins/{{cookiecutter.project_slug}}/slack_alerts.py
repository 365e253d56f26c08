"""The Slack alert channel: an incoming webhook, Airflow connection ``slack_alerts``.

The provider's notifier is imported when an alert is sent, not when this module is: DAG files
import the alerting modules while they are parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .alerting import Alert

CONN_ID = "slack_alerts"
# The webhook's token (the part after hooks.slack.com/services/) is the password.
CONNECTION_EXAMPLE = """AIRFLOW_CONN_SLACK_ALERTS='{"conn_type": "slackwebhook", "password": "T000/B000/XXXX"}'"""


def _notifier(text: str):
    """The notifier for one message. Callers use its ``notify``/``async_notify`` directly: calling the
    notifier itself would render the message as a Jinja template, and braces in an exception would break it.
    """
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    # Slack reads &, < and > as markup; escaped, an exception text shows as it was raised.
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return SlackWebhookNotifier(slack_webhook_conn_id=CONN_ID, text=escaped)


def send(alert: Alert, context: Any) -> None:
    _notifier(alert.text).notify(context)


async def send_notice(subject: str, text: str, context: Any) -> None:
    """Post a notice from the triggerer's event loop (a missed deadline)."""
    await _notifier(text).async_notify(context)
