"""The date and window of a run, with and without a logical date, and windows announced in asset events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from airflow.sdk import Asset

from {{ cookiecutter.project_slug }}.run_dates import Window, announced_windows, data_window, day_before, run_date

RUN_AFTER = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)
ASSET = Asset("orders")


def scheduled_run() -> SimpleNamespace:
    start = datetime(2026, 3, 9, tzinfo=UTC)
    return SimpleNamespace(
        logical_date=start,
        data_interval_start=start,
        data_interval_end=start + timedelta(days=1),
        run_after=start + timedelta(days=1),
    )


def run_without_logical_date() -> SimpleNamespace:
    """A run triggered with the date cleared, or by an asset: no logical date, no interval."""
    return SimpleNamespace(logical_date=None, data_interval_start=None, data_interval_end=None, run_after=RUN_AFTER)


def test_a_scheduled_run_is_for_its_logical_date_and_covers_its_interval():
    run = scheduled_run()

    assert run_date(run) == run.logical_date
    assert data_window(run) == (run.data_interval_start, run.data_interval_end)


def test_a_run_without_a_logical_date_is_for_run_after_and_covers_the_day_before():
    run = run_without_logical_date()

    assert run_date(run) == RUN_AFTER
    assert data_window(run) == (datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC))


def test_runs_triggered_the_same_day_cover_the_same_window():
    # Re-running a load without a date must replace the same rows, not overlap them.
    late = SimpleNamespace(**{**vars(run_without_logical_date()), "run_after": RUN_AFTER + timedelta(hours=9)})

    assert data_window(late) == data_window(run_without_logical_date())


def test_the_day_before_is_a_utc_day_whatever_the_timezone():
    moment = datetime(2026, 3, 10, 1, 30, tzinfo=timezone(timedelta(hours=5)))  # 2026-03-09T20:30Z

    assert day_before(moment) == (datetime(2026, 3, 8, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))


def test_a_window_round_trips_through_an_asset_events_extra():
    window = data_window(scheduled_run())

    assert Window.from_extra(window.as_extra()) == window


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"start": "2026-03-09T00:00:00+00:00"},
        {"start": "yesterday", "end": "today"},
        {"start": "2026-03-10T00:00:00+00:00", "end": "2026-03-09T00:00:00+00:00"},
        {"start": "2026-03-09T00:00:00", "end": "2026-03-10T00:00:00"},
    ],
)
def test_an_extra_without_a_proper_window_is_refused(extra):
    with pytest.raises(ValueError, match="not a window"):
        Window.from_extra(extra)


class Events(list):
    """inlet_events[asset]: the events of one asset, with the accessor's query methods."""

    def ascending(self, ascending: bool = True) -> Events:
        return Events(self if ascending else reversed(self))

    def limit(self, count: int) -> Events:
        return Events(self[:count])


def event(day: int) -> SimpleNamespace:
    start = datetime(2026, 3, day, tzinfo=UTC)
    return SimpleNamespace(extra=Window(start, start + timedelta(days=1)).as_extra())


def test_an_asset_triggered_run_checks_the_windows_of_its_triggering_events():
    triggering = {ASSET: [event(8), event(9)]}

    windows = announced_windows(ASSET, triggering, {ASSET: Events([event(1), event(8), event(9)])})

    assert [window.start.day for window in windows] == [8, 9]


def test_a_manual_run_checks_the_latest_announced_window():
    windows = announced_windows(ASSET, {}, {ASSET: Events([event(1), event(7), event(9)])})

    assert [window.start.day for window in windows] == [9]


def test_before_any_event_there_is_nothing_to_check():
    assert announced_windows(ASSET, {}, {ASSET: Events()}) == []
