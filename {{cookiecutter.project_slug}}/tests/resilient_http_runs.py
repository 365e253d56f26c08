"""ResilientHttpOperator with recorded waits and a fake clock: the setup its tests share."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from {{ cookiecutter.project_slug }}.circuit_breaker import InMemoryBreakerStore
from {{ cookiecutter.project_slug }}.resilient_http import ResilientHttpOperator

from local_servers import Reply, Server, serve

CONN_ID = "test_api"
CONN_VARIABLE = f"AIRFLOW_CONN_{CONN_ID.upper()}"
SEED = 7


@contextmanager
def scripted_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A local server that answers only the replies a test queues, and the operator's connection pointing at it."""
    with serve(Reply(599, b"no reply queued for this request", "text/plain")) as server:
        monkeypatch.setenv(CONN_VARIABLE, server.url)
        yield server


class RecordingWaiter(threading.Event):
    """Records each wait and returns at once, as if the time had passed."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return self.is_set()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


def make_operator(**overrides) -> ResilientHttpOperator:
    arguments = {
        "task_id": "call_api",
        "http_conn_id": CONN_ID,
        "endpoint": "items",
        "base_delay": 1.0,
        "max_delay": 3.0,
        "request_timeout": 5.0,
        "breaker_store": InMemoryBreakerStore(),
        "clock": FakeClock(),
        "rng": random.Random(SEED),
        "waiter": RecordingWaiter(),
        **overrides,
    }
    return ResilientHttpOperator(**arguments)
