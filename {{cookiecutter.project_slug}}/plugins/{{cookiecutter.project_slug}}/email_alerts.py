"""The email alert channel: mail to the team's contact address through the SMTP connection ``smtp_alerts``.

The provider's notifier is imported when an alert is sent, not when this module is: DAG files
import the alerting modules while they are parsed.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from .project_settings import CONTACT_EMAIL

if TYPE_CHECKING:
    from .alerting import Alert

CONN_ID = "smtp_alerts"
# The sender is the connection's "from_email" extra.
CONNECTION_EXAMPLE = (
    """AIRFLOW_CONN_SMTP_ALERTS='{"conn_type": "smtp", "host": "smtp.example.com", "port": 587, """
    """"login": "airflow", "password": "...", "extra": {"from_email": "airflow@example.com"}}'"""
)


def _notifier(subject: str, text: str):
    """The notifier for one email. Callers use its ``notify``/``async_notify`` directly: calling the
    notifier itself would render the message as a Jinja template, and braces in an exception would break it.
    """
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    return SmtpNotifier(
        to=CONTACT_EMAIL,
        subject=f"[Airflow] {subject}",
        html_content=f"<pre>{escape(text)}</pre>",
        smtp_conn_id=CONN_ID,
    )


def send(alert: Alert, context: Any) -> None:
    _notifier(alert.subject, alert.text).notify(context)


async def send_notice(subject: str, text: str, context: Any) -> None:
    """Mail a notice from the triggerer's event loop (a missed deadline)."""
    await _notifier(subject, text).async_notify(context)
