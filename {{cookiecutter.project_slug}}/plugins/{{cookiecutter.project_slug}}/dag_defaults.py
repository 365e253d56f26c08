"""The defaults every DAG in this project starts from."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable

from .alerting import callbacks
from .project_settings import OWNER


def default_args(**overrides: Any) -> dict[str, Any]:
    """Task defaults for a DAG: team ownership, alerting callbacks, and retries that back off.

    Retries wait 1, 2, 4, 8 ... minutes, capped at 30, so a flapping dependency gets time
    to recover without a failing task waiting hours between tries.
    """
    return {
        "owner": OWNER,
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=1),
        # Failures and retries post to chat; DAGs tagged "critical" also page (see alerting.py).
        **callbacks(),
        **overrides,
    }


def daily_intervals() -> CronDataIntervalTimetable:
    """A daily schedule whose runs cover the previous day: [data_interval_start, data_interval_end).

    Airflow 3 turns `schedule="@daily"` into CronTriggerTimetable, whose data interval is empty
    (start == end). DAGs that select or replace data by interval need real intervals. A run
    without a logical date has no interval at all: run_dates.data_window() covers that case.
    """
    return CronDataIntervalTimetable("@daily", timezone="UTC")
