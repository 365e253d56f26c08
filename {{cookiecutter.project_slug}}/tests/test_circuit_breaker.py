"""Circuit breaker state transitions, with an injected clock and in-memory state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk import Variable

from {{ cookiecutter.project_slug }}.circuit_breaker import (
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    InMemoryBreakerStore,
    VariableBreakerStore,
)

THRESHOLD = 3
COOLDOWN = timedelta(seconds=60)
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> InMemoryBreakerStore:
    return InMemoryBreakerStore()


def new_breaker(store, clock, name: str = "api") -> CircuitBreaker:
    return CircuitBreaker(name, store, failure_threshold=THRESHOLD, cooldown=COOLDOWN, clock=clock)


def fail_calls(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.record_failure()


def open_breaker(breaker: CircuitBreaker) -> None:
    fail_calls(breaker, THRESHOLD)
    assert breaker.state is BreakerState.OPEN


def test_stays_closed_below_the_threshold(store, clock):
    breaker = new_breaker(store, clock)
    fail_calls(breaker, THRESHOLD - 1)

    assert breaker.state is BreakerState.CLOSED
    breaker.before_call()


def test_opens_at_the_threshold(store, clock):
    breaker = new_breaker(store, clock)
    fail_calls(breaker, THRESHOLD)

    assert breaker.state is BreakerState.OPEN


def test_success_resets_the_failure_count(store, clock):
    breaker = new_breaker(store, clock)
    fail_calls(breaker, THRESHOLD - 1)
    breaker.record_success()
    fail_calls(breaker, THRESHOLD - 1)

    assert breaker.state is BreakerState.CLOSED


def test_open_breaker_rejects_calls_until_the_cooldown_ends(store, clock):
    breaker = new_breaker(store, clock)
    open_breaker(breaker)
    clock.advance(COOLDOWN.total_seconds() - 1)

    with pytest.raises(CircuitOpenError, match=r"'api' is open until 2026-01-01T00:01:00\+00:00") as error:
        breaker.before_call()
    assert error.value.until == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def test_turns_half_open_after_the_cooldown(store, clock):
    breaker = new_breaker(store, clock)
    open_breaker(breaker)
    clock.advance(COOLDOWN.total_seconds())

    assert breaker.state is BreakerState.HALF_OPEN
    breaker.before_call()


def test_half_open_lets_one_trial_call_through_at_a_time(store, clock):
    breaker = new_breaker(store, clock)
    open_breaker(breaker)
    clock.advance(COOLDOWN.total_seconds())
    breaker.before_call()

    with pytest.raises(CircuitOpenError, match="a trial call is running"):
        breaker.before_call()


def test_a_trial_that_never_reports_stops_blocking_after_a_cooldown(store, clock):
    breaker = new_breaker(store, clock)
    open_breaker(breaker)
    clock.advance(COOLDOWN.total_seconds())
    breaker.before_call()
    clock.advance(COOLDOWN.total_seconds())

    breaker.before_call()


def test_half_open_success_closes_the_breaker(store, clock):
    breaker = new_breaker(store, clock)
    open_breaker(breaker)
    clock.advance(COOLDOWN.total_seconds())
    breaker.before_call()
    breaker.record_success()

    assert breaker.state is BreakerState.CLOSED
    fail_calls(breaker, THRESHOLD - 1)
    assert breaker.state is BreakerState.CLOSED


def test_half_open_failure_reopens_for_a_new_cooldown(store, clock):
    breaker = new_breaker(store, clock)
    open_breaker(breaker)
    clock.advance(COOLDOWN.total_seconds())
    breaker.before_call()
    breaker.record_failure()

    assert breaker.state is BreakerState.OPEN
    clock.advance(COOLDOWN.total_seconds() - 1)
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.advance(1)
    assert breaker.state is BreakerState.HALF_OPEN


def test_a_failed_trial_reopens_even_for_a_caller_with_a_higher_threshold(store, clock):
    # Tasks sharing a breaker name may each set their own threshold.
    open_breaker(new_breaker(store, clock))
    clock.advance(COOLDOWN.total_seconds())
    lenient = CircuitBreaker("api", store, failure_threshold=THRESHOLD * 10, cooldown=COOLDOWN, clock=clock)
    lenient.before_call()
    lenient.record_failure()

    assert lenient.state is BreakerState.OPEN


def test_state_survives_across_breakers_sharing_a_store(store, clock):
    # Each task try builds its own breaker; only the store connects them.
    fail_calls(new_breaker(store, clock), THRESHOLD - 1)
    fail_calls(new_breaker(store, clock), 1)

    with pytest.raises(CircuitOpenError):
        new_breaker(store, clock).before_call()
    new_breaker(store, clock, name="another_api").before_call()


def test_threshold_below_one_is_rejected(store, clock):
    with pytest.raises(ValueError, match="at least 1"):
        CircuitBreaker("api", store, failure_threshold=0, clock=clock)


class FakeVariables:
    """Variable.get and Variable.set over a dict, strict like the real ones about missing keys."""

    _missing = object()

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str, default=_missing, deserialize_json: bool = False):
        assert not deserialize_json, "the store parses JSON itself"
        if key not in self.values:
            if default is self._missing:
                raise KeyError(key)
            return default
        return self.values[key]

    def set(self, key: str, value, description: str | None = None, serialize_json: bool = False) -> None:
        assert isinstance(value, str) and not serialize_json, "Variables hold the JSON text"
        self.values[key] = value


@pytest.fixture
def variables(monkeypatch) -> FakeVariables:
    fake = FakeVariables()
    monkeypatch.setattr(Variable, "get", fake.get)
    monkeypatch.setattr(Variable, "set", fake.set)
    return fake


def test_variable_store_reads_nothing_before_the_first_write(variables):
    assert VariableBreakerStore().load("api") is None


def test_variable_store_round_trips_the_state_as_json(variables, clock):
    open_breaker(new_breaker(VariableBreakerStore(), clock))

    stored = json.loads(variables.values["circuit_breaker:api"])
    assert stored == {
        "state": "open",
        "consecutive_failures": THRESHOLD,
        "opened_at": START,
        "trial_started_at": None,
    }
    with pytest.raises(CircuitOpenError):
        new_breaker(VariableBreakerStore(), clock).before_call()


def test_only_the_caller_that_became_the_trial_is_told_so(store, clock):
    breaker = new_breaker(store, clock)
    assert breaker.before_call() is False
    open_breaker(breaker)
    clock.advance(COOLDOWN.total_seconds())

    assert breaker.before_call() is True


def test_a_cancelled_trial_lets_the_next_caller_try_at_once(store, clock):
    breaker = new_breaker(store, clock)
    open_breaker(breaker)
    clock.advance(COOLDOWN.total_seconds())
    breaker.before_call()

    breaker.cancel_trial()

    assert breaker.state is BreakerState.HALF_OPEN
    assert new_breaker(store, clock).before_call() is True


def test_cancelling_outside_a_trial_changes_nothing(store, clock):
    breaker = new_breaker(store, clock)
    fail_calls(breaker, THRESHOLD - 1)
    breaker.cancel_trial()
    open_breaker(new_breaker(store, clock, name="other"))

    assert breaker.state is BreakerState.CLOSED
    assert store.records["api"]["consecutive_failures"] == THRESHOLD - 1


@pytest.mark.parametrize("text", ["not json", "[]", '{"state": "ajar"}', '{"consecutive_failures": 2}'])
def test_a_hand_edited_variable_is_named_with_how_to_reset_it(variables, text):
    variables.values["circuit_breaker:api"] = text

    with pytest.raises(ValueError, match=r"Variable 'circuit_breaker:api' does not hold .*delete it to reset"):
        VariableBreakerStore().load("api")
