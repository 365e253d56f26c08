"""Triggers: async waits that run in the triggerer, so a waiting task holds no worker slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent

# Statuses that say the request itself is wrong (bad URL, credentials, method): waiting will
# not change the answer. Every other status, like 404 or 503, may still turn into a match.
FATAL_STATUSES = frozenset({400, 401, 403, 405, 410})


class HttpConditionTrigger(BaseTrigger):
    """Poll a URL with GET until it answers ``expected_status`` and, optionally, a JSON field matches.

    Yields exactly one event, a dict with a ``status`` key:

    - ``success``: the condition holds; ``payload`` is the response JSON (None if the body is not JSON).
    - ``timeout``: ``timeout`` seconds after ``started_at`` the condition still did not hold.
    - ``error``: an answer that waiting cannot change (see FATAL_STATUSES) or an unusable URL.

    Unreachable servers, network errors and other statuses count as "not yet". The deadline is
    ``started_at + timeout`` in wall-clock time, so a trigger rebuilt after a triggerer restart
    keeps the original deadline instead of starting over.

    :param url: the full URL to GET.
    :param started_at: when the wait began (timezone-aware).
    :param timeout: seconds from ``started_at`` until the wait gives up.
    :param poll_interval: seconds between polls.
    :param expected_status: the HTTP status that counts as a match.
    :param json_field: dotted path into the response JSON, e.g. ``"job.state"``; None checks the status only.
    :param expected_value: the value ``json_field`` must equal.
    :param request_timeout: seconds one request may take; the last poll may end this much past the deadline.
    """

    # Seams for tests. The clock is wall-clock time because the deadline must hold across processes.
    clock: Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))
    sleep: Callable[[float], Any] = staticmethod(asyncio.sleep)

    def __init__(
        self,
        *,
        url: str,
        started_at: datetime,
        timeout: float,
        poll_interval: float = 60.0,
        expected_status: int = 200,
        json_field: str | None = None,
        expected_value: Any = None,
        request_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        if started_at.tzinfo is None:
            raise ValueError("started_at must be timezone-aware")
        self.url = url
        self.started_at = started_at
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.expected_status = expected_status
        self.json_field = json_field
        self.expected_value = expected_value
        self.request_timeout = request_timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "url": self.url,
                "started_at": self.started_at,
                "timeout": self.timeout,
                "poll_interval": self.poll_interval,
                "expected_status": self.expected_status,
                "json_field": self.json_field,
                "expected_value": self.expected_value,
                "request_timeout": self.request_timeout,
            },
        )

    @property
    def deadline(self) -> datetime:
        return self.started_at + timedelta(seconds=self.timeout)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        yield TriggerEvent(await self._wait())

    async def _wait(self) -> dict[str, Any]:
        self.log.info("Waiting until %s; polling %s every %ss", self.deadline.isoformat(), self.url, self.poll_interval)
        last_seen = None
        polls = 0
        async with httpx.AsyncClient(timeout=self.request_timeout) as client:
            while True:
                polls += 1
                try:
                    response = await client.get(self.url)
                except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
                    return self._error(f"cannot request {self.url}: {error}")
                except httpx.TransportError as error:
                    seen = f"not reachable ({type(error).__name__})"
                except httpx.HTTPError as error:
                    return self._error(f"request to {self.url} failed: {error}")
                else:
                    if response.status_code != self.expected_status and response.status_code in FATAL_STATUSES:
                        return self._error(f"{self.url} answered {response.status_code}: {response.text[:200]}")
                    matched, payload, seen = self._check(response)
                    if matched:
                        self.log.info("Condition met at %s after %d poll(s)", self.url, polls)
                        return {"status": "success", "payload": payload, "polls": polls}

                # Log changes only: a week-long wait polling every minute must not flood the task log.
                if seen != last_seen:
                    self.log.info("Not yet: %s %s", self.url, seen)
                    last_seen = seen

                remaining = (self.deadline - self.clock()).total_seconds()
                if remaining <= 0:
                    message = f"{self.url} did not meet the condition within {self.timeout}s (last: {seen})"
                    self.log.warning(message)
                    return {"status": "timeout", "message": message, "polls": polls}
                await self.sleep(min(self.poll_interval, remaining))

    def _check(self, response: httpx.Response) -> tuple[bool, Any, str]:
        """Whether the response meets the condition, its JSON payload, and what was seen, for the log."""
        if response.status_code != self.expected_status:
            return False, None, f"answered {response.status_code}"
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if self.json_field is None:
            return True, payload, f"answered {response.status_code}"
        value = _lookup(payload, self.json_field)
        return value == self.expected_value, payload, f"has {self.json_field}={value!r}"

    def _error(self, message: str) -> dict[str, Any]:
        self.log.error(message)
        return {"status": "error", "message": message}


def _lookup(document: Any, dotted_path: str) -> Any:
    """The value at ``a.b.c`` in nested dicts, or None where the path does not exist."""
    for key in dotted_path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document
