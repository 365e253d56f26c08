"""A circuit breaker that remembers an upstream's health across task tries and workers.

closed -> open after `failure_threshold` consecutive failed calls; open rejects every call
until `cooldown` has passed; then half-open lets one trial call through: its success closes
the breaker, its failure opens it again for another cool-down.

Where the state lives, and why: in an Airflow Variable, `circuit_breaker:<name>`, as JSON.
A retry of a task can run on another worker, and every task calling the same API should
see the same breaker, so the state must outlive the process and be reachable from any
worker. Variables are: the Task SDK reads and writes them through the API server. XCom
is not, since it belongs to one DAG run, and Airflow 3 tasks may not open the metadata DB
themselves. Timestamps are wall-clock epoch seconds because several machines compare them.

The read-modify-write on a Variable is not atomic. Two tasks finishing at once can lose
one failure count, so opening is delayed by one call at worst, and two workers can both
start a trial call in half-open. The breaker is a load shedder, not a lock; the
`external_api` pool caps how many calls run at once.

The store is a two-method interface, so tests use `InMemoryBreakerStore` and an injected
clock instead of a database and real time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowException


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerRecord:
    """What the store keeps for one breaker."""

    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    opened_at: float | None = None
    trial_started_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BreakerRecord:
        return cls(**{**data, "state": BreakerState(data["state"])})


class BreakerStore(Protocol):
    def load(self, name: str) -> dict[str, Any] | None: ...

    def save(self, name: str, record: dict[str, Any]) -> None: ...


class InMemoryBreakerStore:
    """Keeps state in this process only: for tests, or a breaker that need not outlive a try."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def load(self, name: str) -> dict[str, Any] | None:
        return self.records.get(name)

    def save(self, name: str, record: dict[str, Any]) -> None:
        self.records[name] = dict(record)


class VariableBreakerStore:
    """Keeps state in the Airflow Variable `circuit_breaker:<name>`, shared by every worker."""

    key_prefix = "circuit_breaker:"

    def load(self, name: str) -> dict[str, Any] | None:
        key = self.key_prefix + name
        text = Variable.get(key, default=None)
        if text is None:
            return None
        try:
            record = json.loads(text)
            BreakerRecord.from_dict(record)
        except (KeyError, TypeError, ValueError) as error:
            # Someone edited it by hand: say which Variable, rather than fail on a JSON detail.
            raise ValueError(
                f"Variable {key!r} does not hold circuit breaker state ({error}); delete it to reset the breaker"
            ) from None
        return record

    def save(self, name: str, record: dict[str, Any]) -> None:
        Variable.set(
            self.key_prefix + name,
            json.dumps(record, sort_keys=True),
            description="Circuit breaker state, written by tasks; delete it to reset the breaker.",
        )


class CircuitOpenError(AirflowException):
    """Raised instead of calling an upstream whose breaker is open."""

    def __init__(self, name: str, until: float, reason: str) -> None:
        self.name = name
        self.until = datetime.fromtimestamp(until, tz=UTC)
        super().__init__(
            f"Circuit breaker {name!r} is open until {self.until.isoformat(timespec='seconds')} "
            f"({reason}); not calling the API."
        )


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        store: BreakerStore,
        *,
        failure_threshold: int = 5,
        cooldown: timedelta = timedelta(minutes=5),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.store = store
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown.total_seconds()
        self.clock = clock

    @property
    def state(self) -> BreakerState:
        """The state a call would meet now: an open breaker past its cool-down is half-open."""
        record = self._load()
        if record.state is BreakerState.OPEN and self.clock() >= record.opened_at + self.cooldown:
            return BreakerState.HALF_OPEN
        return record.state

    def before_call(self) -> bool:
        """Let a call through, or raise CircuitOpenError. In half-open, the caller becomes the trial.

        Returns whether the caller is that trial: it must then end with record_success,
        record_failure or cancel_trial, or the breaker stays half-open for a whole cool-down.
        """
        record = self._load()
        now = self.clock()
        if record.state is BreakerState.CLOSED:
            return False
        if record.state is BreakerState.OPEN and now < record.opened_at + self.cooldown:
            reason = f"{record.consecutive_failures} consecutive failures"
            raise CircuitOpenError(self.name, record.opened_at + self.cooldown, reason)
        # A trial that never reported back (its worker died) stops blocking after one cool-down.
        if record.state is BreakerState.HALF_OPEN and now < record.trial_started_at + self.cooldown:
            raise CircuitOpenError(self.name, record.trial_started_at + self.cooldown, "a trial call is running")
        self._save(replace(record, state=BreakerState.HALF_OPEN, trial_started_at=now))
        return True

    def record_success(self) -> None:
        self._save(BreakerRecord())

    def cancel_trial(self) -> None:
        """End a trial call that never reached the API (the request was invalid, the task was killed).

        It says nothing about the API's health, so the breaker goes back to open with its cool-down
        over: the next caller becomes the trial at once, instead of after another cool-down.
        """
        record = self._load()
        if record.state is BreakerState.HALF_OPEN:
            self._save(replace(record, state=BreakerState.OPEN, opened_at=self.clock() - self.cooldown))

    def record_failure(self) -> None:
        record = self._load()
        failures = record.consecutive_failures + 1
        if record.state is BreakerState.HALF_OPEN or failures >= self.failure_threshold:
            record = BreakerRecord(BreakerState.OPEN, failures, opened_at=self.clock())
        else:
            record = replace(record, consecutive_failures=failures)
        self._save(record)

    def _load(self) -> BreakerRecord:
        data = self.store.load(self.name)
        return BreakerRecord() if data is None else BreakerRecord.from_dict(data)

    def _save(self, record: BreakerRecord) -> None:
        self.store.save(self.name, record.to_dict())
