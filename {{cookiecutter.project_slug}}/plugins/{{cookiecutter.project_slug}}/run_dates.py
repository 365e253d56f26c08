"""What date and what window of data a DAG run is for, with or without a logical date.

Airflow 3 runs need not have a logical date: a run triggered with the date cleared (REST API
``"logical_date": null``, ``airflow dags trigger`` without one) and every asset-triggered run
have none, and then no data interval either. Their template context has no ``ds``, ``ts``,
``logical_date`` or ``data_interval_*``; ``dag_run.run_after`` is always set. Tasks therefore
take ``dag_run`` and ask here:

- ``run_date(dag_run)``: the logical date, else run_after. For "the day this run is for".
- ``data_window(dag_run)``: the data interval, else the last whole UTC day before run_after,
  which is the interval a daily_intervals() run scheduled at that midnight covers. So a run
  triggered now, with or without a date, processes yesterday, as the UI's manual runs do.

In Jinja templates, the expression is ``(dag_run.logical_date or dag_run.run_after) | ds``, never ``ds``:
``RUN_DATE_TEMPLATE``. tests/test_dag_policy.py fails on a template or task that needs a logical date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

# The run's date (YYYY-MM-DD) in a templated task field, with or without a logical date.
RUN_DATE_TEMPLATE = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"


class Window(NamedTuple):
    """A half-open interval [start, end) of data."""

    start: datetime
    end: datetime

    def as_extra(self) -> dict[str, str]:
        """The window as JSON-safe values, e.g. for an asset event's extra or an XCom."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> Window:
        """The window as_extra() wrote; a ValueError names what is missing or malformed."""
        try:
            start, end = datetime.fromisoformat(extra["start"]), datetime.fromisoformat(extra["end"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a window (expected ISO 'start' and 'end'): {extra!r}") from error
        if start.tzinfo is None or end.tzinfo is None or end < start:
            raise ValueError(f"not a window (needs timezone-aware start <= end): {extra!r}")
        return cls(start, end)


def window_templates(task_id: str) -> tuple[str, str]:
    """Templates rendering the start and end of the window that task ``task_id`` returned (as ``Window.as_extra()``)."""
    pulled = f"ti.xcom_pull(task_ids='{task_id}')"
    return "{{ " + pulled + "['start'] }}", "{{ " + pulled + "['end'] }}"


def run_date(dag_run: Any) -> datetime:
    """The run's logical date, or when it was due to run (run_after) if it has none."""
    return dag_run.logical_date or dag_run.run_after


def data_window(dag_run: Any) -> Window:
    """The run's data interval, or the last whole UTC day before run_after if it has none."""
    if dag_run.data_interval_start is not None and dag_run.data_interval_end is not None:
        return Window(dag_run.data_interval_start, dag_run.data_interval_end)
    return day_before(dag_run.run_after)


def day_before(moment: datetime) -> Window:
    """The last whole UTC day that ended at or before ``moment``."""
    end = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(end - timedelta(days=1), end)


def announced_windows(asset: Any, triggering_asset_events: Any, inlet_events: Any) -> list[Window]:
    """The windows a producer announced in ``asset``'s events (as ``Window.as_extra()``).

    Those of the events that triggered this run; for a run no event triggered (a manual one),
    the latest event's, which needs ``asset`` among the task's inlets. Empty if there is none.
    A ValueError names an event whose extra holds no window.
    """
    events = list((triggering_asset_events or {}).get(asset, ()))
    if not events and inlet_events is not None:
        events = list(inlet_events[asset].ascending(False).limit(1))
    return [Window.from_extra(event.extra) for event in events]
