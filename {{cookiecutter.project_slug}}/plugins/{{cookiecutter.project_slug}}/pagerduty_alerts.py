"""The PagerDuty pager: Events API v2, Airflow connection ``pagerduty_alerts`` (integration key as password).

A failure triggers an incident keyed by DAG, run and task; the same task's recovery resolves it.
The provider's notifier is imported when a page is sent, not when this module is: DAG files
import the alerting modules while they are parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .project_settings import PROJECT_SLUG

if TYPE_CHECKING:
    from .alerting import Alert

CONN_ID = "pagerduty_alerts"
CONNECTION_EXAMPLE = (
    """AIRFLOW_CONN_PAGERDUTY_ALERTS='{"conn_type": "pagerduty_events", "password": "<routing key>"}'"""
)


def send(alert: Alert, context: Any) -> None:
    from airflow.providers.pagerduty.notifications.pagerduty import PagerdutyNotifier

    # Imported here: alerting imports this module while it loads.
    from .alerting import RECOVERED

    PagerdutyNotifier(
        pagerduty_events_conn_id=CONN_ID,
        # A recovery closes the incident its failure opened; every other alert opens or updates one.
        action="resolve" if alert.event == RECOVERED else "trigger",
        dedup_key=alert.key,
        summary=alert.subject,
        severity="critical",
        source=PROJECT_SLUG,
        component=alert.dag_id,
        custom_details=alert.details,
        links=[{"href": alert.log_url, "text": "Task log"}] if alert.log_url else None,
    ).notify(context)
