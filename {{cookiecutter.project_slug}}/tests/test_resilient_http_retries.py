"""ResilientHttpOperator when calls fail: retries with jittered waits, its circuit breaker, and on_kill.

Waits are recorded, never slept; an hour-long wait that on_kill must end is a real one.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowTaskTerminated

from {{ cookiecutter.project_slug }}.circuit_breaker import (
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    InMemoryBreakerStore,
)
from {{ cookiecutter.project_slug }}.resilient_http import ResilientHttpOperator

from local_servers import HOLD, Reply, Server, free_port
from resilient_http_runs import CONN_ID, CONN_VARIABLE, SEED, FakeClock, make_operator, scripted_api

# Cut off after 10 bytes of a longer chunked body: the client sees a ChunkedEncodingError.
CUT_SHORT = Reply(200, {"records": list(range(100))}, truncate_at=10)


@pytest.fixture
def api(monkeypatch) -> Iterator[Server]:
    with scripted_api(monkeypatch) as server:
        yield server


@pytest.fixture
def closed_port(monkeypatch) -> int:
    """A local port nothing listens on, so connecting is refused."""
    port = free_port()
    monkeypatch.setenv(CONN_VARIABLE, f"http://127.0.0.1:{port}")
    return port


def test_5xx_408_and_429_are_retried_with_full_jitter_waits(api):
    api.queue(Reply(503), Reply(408), Reply(429), Reply(200, {"ok": True}))
    operator = make_operator(max_attempts=4)

    assert operator.execute(context={}) == {"ok": True}
    assert len(api.requests) == 4
    caps = [1.0, 2.0, 3.0]  # base_delay * 2**n, the last one held down by max_delay
    waits = operator.waiter.waits
    assert all(0 <= wait <= cap for wait, cap in zip(waits, caps, strict=True))
    same_draws = random.Random(SEED)
    assert waits == [same_draws.uniform(0, cap) for cap in caps]


def test_a_body_cut_off_mid_transfer_is_retried(api):
    api.queue(CUT_SHORT, Reply(200, {"ok": True}))
    operator = make_operator()

    assert operator.execute(context={}) == {"ok": True}
    assert len(api.requests) == 2 and len(operator.waiter.waits) == 1


def test_a_client_error_fails_at_once_without_the_body_or_query_in_the_message(api, capsys):
    api.queue(Reply(400, {"error": "bad date", "echo": "token-51c0"}))
    operator = make_operator(data={"date": "x", "api_key": "key-7a2e"})

    with pytest.raises(AirflowFailException) as failure:
        operator.execute(context={})

    message = str(failure.value)
    assert message.startswith(f"GET {api.url}/items?... answered HTTP 400 Bad Request.")
    assert "token-51c0" not in message and "key-7a2e" not in message
    assert len(api.requests) == 1 and operator.waiter.waits == []
    # The body is for the task log, which Airflow masks; exceptions travel on into alerts.
    assert "bad date" in capsys.readouterr().out  # Airflow's task logger writes through structlog to stdout


def test_gives_up_after_max_attempts(api):
    api.queue(Reply(500), Reply(500), Reply(500))
    operator = make_operator(max_attempts=3)

    with pytest.raises(AirflowException, match="failed 3 times; last error: HTTP 500"):
        operator.execute(context={})
    assert len(api.requests) == 3
    assert len(operator.waiter.waits) == 2


def test_refused_connections_are_retried(closed_port):
    operator = make_operator(max_attempts=2)

    with pytest.raises(AirflowException, match="failed 2 times; last error: ConnectionError"):
        operator.execute(context={})
    assert len(operator.waiter.waits) == 1


def test_timeouts_are_retried(api):
    api.queue(HOLD, Reply(200, {"ok": True}))
    operator = make_operator(request_timeout=0.2)

    assert operator.execute(context={}) == {"ok": True}
    assert len(api.requests) == 2


def test_breaker_opens_after_failed_tries_then_fails_fast_without_a_request(api):
    store, clock = InMemoryBreakerStore(), FakeClock()

    def new_try() -> ResilientHttpOperator:
        return make_operator(max_attempts=2, failure_threshold=2, breaker_store=store, clock=clock)

    api.queue(Reply(503), CUT_SHORT, Reply(503), Reply(503))
    for _ in range(2):
        with pytest.raises(AirflowException, match="failed 2 times"):
            new_try().execute(context={})
    assert len(api.requests) == 4

    with pytest.raises(CircuitOpenError, match=f"'{CONN_ID}' is open until 2026-01-01T00:05:00"):
        new_try().execute(context={})
    assert len(api.requests) == 4


def test_a_trial_call_cut_off_mid_transfer_reopens_the_breaker(api):
    store, clock = InMemoryBreakerStore(), FakeClock()
    breaker = CircuitBreaker(CONN_ID, store, failure_threshold=1, clock=clock)
    breaker.before_call()
    breaker.record_failure()
    clock.now += breaker.cooldown
    api.queue(CUT_SHORT, CUT_SHORT)

    with pytest.raises(AirflowException, match="last error: ChunkedEncodingError"):
        make_operator(max_attempts=2, failure_threshold=1, breaker_store=store, clock=clock).execute(context={})

    assert breaker.state is BreakerState.OPEN


def test_a_client_error_does_not_count_against_the_breaker(api):
    store = InMemoryBreakerStore()
    api.queue(Reply(404), Reply(404), Reply(200, {"ok": True}))
    for _ in range(2):
        with pytest.raises(AirflowFailException):
            make_operator(failure_threshold=1, breaker_store=store).execute(context={})

    assert make_operator(failure_threshold=1, breaker_store=store).execute(context={}) == {"ok": True}


class SignallingEvent(threading.Event):
    """A real, blocking Event that tells the test when the operator starts waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


class LongestDelay(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def kill_during_the_first_wait(operator: ResilientHttpOperator) -> list[BaseException]:
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            operator.execute(context={})
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        assert operator.waiter.waiting.wait(timeout=10), "the operator never started waiting"
        operator.on_kill()
        worker.join(timeout=10)
        assert not worker.is_alive(), "on_kill did not end the hour-long wait"
    finally:
        operator.waiter.set()  # never leave the worker blocked for an hour when on_kill fails
        worker.join(timeout=10)
    return outcome


def test_on_kill_ends_a_pending_wait_and_stops_retrying(api):
    api.queue(Reply(503), Reply(200, {"never": "fetched"}))
    operator = make_operator(base_delay=3600, max_delay=3600, rng=LongestDelay(), waiter=SignallingEvent())

    outcome = kill_during_the_first_wait(operator)

    assert len(outcome) == 1 and isinstance(outcome[0], AirflowTaskTerminated)
    assert len(api.requests) == 1


def test_a_killed_trial_call_lets_the_next_caller_try_at_once(api):
    store, clock = InMemoryBreakerStore(), FakeClock()
    breaker = CircuitBreaker(CONN_ID, store, failure_threshold=1, clock=clock)
    breaker.before_call()
    breaker.record_failure()
    clock.now += breaker.cooldown
    api.queue(Reply(503))
    operator = make_operator(
        base_delay=3600, max_delay=3600, rng=LongestDelay(), waiter=SignallingEvent(), breaker_store=store, clock=clock
    )

    kill_during_the_first_wait(operator)

    # Not "a trial call is running" for a whole cool-down: the killed trial said nothing about the API.
    assert breaker.before_call() is True
