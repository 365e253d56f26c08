"""Triggers: async waits that run in the triggerer, so a waiting task holds no worker slot."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import certifi
import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent

from .connections import MissingConnectionError, arequire_connection
from .http_connections import HttpSettings, join_url, redact_url

# Statuses that say the request itself is wrong (bad URL or method, a resource that is gone):
# neither waiting nor a retry changes the answer.
WRONG_REQUEST_STATUSES = frozenset({400, 405, 410})
# Credentials refused: waiting will not change that, but a retry reads the connection again, so
# credentials rotated or fixed in the meantime are picked up.
AUTH_STATUSES = frozenset({401, 403, 407})
# Enough of an error page to recognise it in the triggerer's log; never put into an event.
BODY_EXCERPT_CHARS = 200


class HttpConditionTrigger(BaseTrigger):
    """Poll ``GET <connection's base URL>/<endpoint>`` until it answers ``expected_status`` and, optionally,
    a JSON field matches.

    The connection is read here, in the triggerer, when the wait starts: the trigger's kwargs, which
    Airflow stores in the metadata DB, hold only its id, never a password, token or header. Auth,
    headers, TLS verification, client certificate and proxies come from the connection as for
    ResilientHttpOperator (http_connections.py), so one connection means one URL everywhere.

    Yields exactly one event, a dict with a ``status`` key:

    - ``success``: the condition holds; ``payload`` is the response JSON (None if the body is not JSON).
    - ``timeout``: ``timeout`` seconds after ``started_at`` the condition still did not hold.
    - ``error``: an answer that waiting cannot change, with ``retryable``: true when a task retry may
      help (credentials refused), false when it cannot (a wrong request, a missing connection).

    Unreachable servers, network errors and other statuses count as "not yet". The deadline is
    ``started_at + timeout`` in wall-clock time, so a trigger rebuilt after a triggerer restart
    keeps the original deadline instead of starting over.

    :param http_conn_id: the connection with the base URL, credentials and client settings.
    :param endpoint: path under the base URL.
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
        http_conn_id: str,
        endpoint: str,
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
        self.http_conn_id = http_conn_id
        self.endpoint = endpoint
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
                "http_conn_id": self.http_conn_id,
                "endpoint": self.endpoint,
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
        try:
            settings = HttpSettings.from_connection(await arequire_connection(self.http_conn_id))
        except MissingConnectionError as error:
            return self._error(f"{error} The triggerer needs it as well as the workers.", retryable=False)
        except ValueError as error:
            return self._error(str(error), retryable=False)
        url = join_url(settings.base_url, self.endpoint)
        shown = redact_url(url)
        self.log.info("Waiting until %s; polling %s every %ss", self.deadline.isoformat(), shown, self.poll_interval)
        last_seen = None
        polls = 0
        async with client_for(settings, self.request_timeout) as client:
            while True:
                polls += 1
                try:
                    response = await client.get(url)
                except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
                    return self._error(f"cannot request {shown}: {error}", retryable=False)
                except httpx.TransportError as error:
                    seen = f"not reachable ({type(error).__name__})"
                except httpx.HTTPError as error:
                    return self._error(f"request to {shown} failed: {type(error).__name__}", retryable=False)
                else:
                    if response.status_code != self.expected_status and (refusal := self._refusal(response, shown)):
                        return refusal
                    matched, payload, seen = self._check(response)
                    if matched:
                        self.log.info("Condition met at %s after %d poll(s)", shown, polls)
                        return {"status": "success", "payload": payload, "polls": polls}

                # Log changes only: a week-long wait polling every minute must not flood the task log.
                if seen != last_seen:
                    self.log.info("Not yet: %s %s", shown, seen)
                    last_seen = seen

                remaining = (self.deadline - self.clock()).total_seconds()
                if remaining <= 0:
                    message = f"{shown} did not meet the condition within {self.timeout}s (last: {seen})"
                    self.log.warning(message)
                    return {"status": "timeout", "message": message, "polls": polls}
                await self.sleep(min(self.poll_interval, remaining))

    def _refusal(self, response: httpx.Response, shown: str) -> dict[str, Any] | None:
        """The error event for an answer that waiting cannot change, or None to keep waiting."""
        status = response.status_code
        if status not in WRONG_REQUEST_STATUSES | AUTH_STATUSES:
            return None
        self.log.warning("%s answered %d: %r", shown, status, response.text[:BODY_EXCERPT_CHARS])
        if status in AUTH_STATUSES:
            message = (
                f"{shown} answered {status}: the credentials of connection {self.http_conn_id!r} were refused; "
                "a retry reads the connection again"
            )
            return self._error(message, retryable=True)
        return self._error(f"{shown} answered {status}: the request itself is wrong", retryable=False)

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

    def _error(self, message: str, *, retryable: bool) -> dict[str, Any]:
        self.log.error(message)
        return {"status": "error", "message": message, "retryable": retryable}


def client_for(settings: HttpSettings, request_timeout: float) -> httpx.AsyncClient:
    """An httpx client that calls the way the connection says: auth, headers, TLS and proxies."""
    verify = _tls_context(settings)
    mounts = {
        _proxy_pattern(scheme): httpx.AsyncHTTPTransport(proxy=proxy, verify=verify, trust_env=settings.trust_env)
        for scheme, proxy in settings.proxies.items()
    }
    return httpx.AsyncClient(
        auth=settings.auth,
        headers=settings.headers,
        verify=verify,
        mounts=mounts or None,
        trust_env=settings.trust_env,
        follow_redirects=settings.allow_redirects,
        max_redirects=settings.max_redirects,
        timeout=request_timeout,
    )


def _tls_context(settings: HttpSettings) -> ssl.SSLContext | bool:
    """httpx's own verification (certifi, or SSL_CERT_FILE with trust_env) unless the connection
    names a CA bundle or a client certificate."""
    if not settings.cert and isinstance(settings.verify, bool):
        return settings.verify
    if isinstance(settings.verify, str):
        context = ssl.create_default_context(cafile=settings.verify)
    else:
        context = ssl.create_default_context(cafile=certifi.where())
        if not settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    if isinstance(settings.cert, str):
        context.load_cert_chain(settings.cert)
    elif settings.cert:
        context.load_cert_chain(*settings.cert)
    return context


def _proxy_pattern(scheme: str) -> str:
    """requests' proxy keys ("https", "all", "http://host") as httpx mount patterns."""
    return scheme if "://" in scheme else f"{scheme}://"


def _lookup(document: Any, dotted_path: str) -> Any:
    """The value at ``a.b.c`` in nested dicts, or None where the path does not exist."""
    for key in dotted_path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document
