"""HttpConditionTrigger runs on a fake clock: the setup the trigger and sensor tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from {{ cookiecutter.project_slug }}.triggers import HttpConditionTrigger

from local_servers import Reply, Server, serve

START = datetime(2026, 1, 1, tzinfo=UTC)
READY = {"state": "ready", "rows": 3}
CONN_ID = "export_api"
CONN_VARIABLE = "AIRFLOW_CONN_EXPORT_API"


class FakeTime:
    """A clock that only moves when the trigger sleeps, so waits take no real time."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def make_trigger(endpoint: str = "exports/2026-01-01", **overrides) -> HttpConditionTrigger:
    kwargs = {
        "http_conn_id": CONN_ID,
        "endpoint": endpoint,
        "started_at": START,
        "timeout": 10.0,
        "poll_interval": 2.0,
        "json_field": "state",
        "expected_value": "ready",
        "request_timeout": 5.0,
        **overrides,
    }
    return HttpConditionTrigger(**kwargs)


def run_trigger(trigger: HttpConditionTrigger, fake_time: FakeTime | None = None) -> list[dict]:
    fake_time = fake_time or FakeTime(START)
    trigger.clock = fake_time.clock
    trigger.sleep = fake_time.sleep
    return asyncio.run(collect_events(trigger))


async def collect_events(trigger: HttpConditionTrigger) -> list[dict]:
    """Every event the trigger yields, as payloads; a single-event trigger yields a list of one."""
    return [event.payload async for event in trigger.run()]


@contextmanager
def export_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A local server that answers READY until told otherwise, and the trigger's connection pointing at it."""
    with serve(Reply(200, READY)) as server:
        monkeypatch.setenv(CONN_VARIABLE, server.url)
        yield server
