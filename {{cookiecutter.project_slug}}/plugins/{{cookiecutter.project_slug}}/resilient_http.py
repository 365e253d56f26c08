"""An HTTP operator for flaky, rate-limited APIs: backoff with full jitter, a circuit breaker, checks.

One task try makes up to `max_attempts` requests. Between them it waits a random time in
[0, min(max_delay, base_delay * 2**n)] ("full jitter"), so many tasks retrying at once
spread out instead of hitting the API in lockstep. Anything that goes wrong on the way (refused
or dropped connections, timeouts, a body cut off mid-transfer) and the statuses 408, 429 and 5xx
are retried; any other 4xx fails at once, since the same request will be refused again.

A try that exhausts its attempts counts as one failure of the circuit breaker named after
the connection, shared by every task that calls the same API (see circuit_breaker.py).
While it is open, tries fail fast without a request, and Airflow's own retries with
backoff come back later. Any answer from the API, even a 4xx, shows it is up and closes it.

The URL comes from the connection as http_connections.base_url() reads it, so an ``https://``
connection is called over https. Error messages, which end up in alerts, show URLs without
their query string and never a response body; the task log has an excerpt of the body.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    AirflowTaskTerminated,
)

from .circuit_breaker import BreakerStore, CircuitBreaker, VariableBreakerStore
from .connections import require_connection
from .http_connections import base_url, join_url, redact_url

# requests and the HTTP hook take half a second to import, which every parse of a DAG file
# using this operator would pay; they are imported when a task runs.
if TYPE_CHECKING:
    import requests
    from airflow.providers.http.hooks.http import HttpHook

# Logged when an answer is refused: enough to recognise an error page, not a whole payload.
BODY_EXCERPT_CHARS = 500


def is_retryable_status(status_code: int) -> bool:
    """408 Request Timeout, 429 Too Many Requests and server errors may go away on their own."""
    return status_code in (408, 429) or status_code >= 500


def full_jitter_delay(retry_number: int, base_delay: float, max_delay: float, rng: random.Random) -> float:
    """Seconds to wait before retry `retry_number` (0 for the first retry)."""
    return rng.uniform(0, min(max_delay, base_delay * 2**retry_number))


def is_empty(body: Any) -> bool:
    return body is None or body == "" or body == [] or body == {}


def parse_body(response: requests.Response) -> Any:
    if not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def json_has_keys(*keys: str) -> Callable[[requests.Response], bool]:
    """A response_check: the body is a JSON object holding every one of `keys`."""

    def check(response: requests.Response) -> bool:
        body = parse_body(response)
        return isinstance(body, dict) and all(key in body for key in keys)

    return check


class ResilientHttpOperator(BaseOperator):
    """Call an HTTP API through HttpHook and return the parsed JSON (or text) as XCom.

    :param http_conn_id: the HTTP connection with the API's base URL and credentials
    :param endpoint: path appended to the base URL (templated)
    :param method: HTTP method; GET sends `data` as query parameters, others as the body
    :param data: query parameters or body (templated)
    :param headers: extra request headers (templated)
    :param response_check: gets the response; returning False fails the task
    :param skip_on_empty: skip the task when the API answers with nothing (no body, null, [] or {})
    :param max_attempts: requests per task try, the first one included
    :param base_delay: seconds; the cap of the random wait doubles from here with each retry
    :param max_delay: seconds; the largest cap of the random wait
    :param request_timeout: seconds to connect, and then to wait for each read
    :param breaker_name: breaker shared by every task that names it; defaults to the connection id
    :param failure_threshold: failed task tries in a row that open the breaker
    :param breaker_cooldown: how long an open breaker rejects calls before a trial call
    :param breaker_store: where breaker state lives; the default is an Airflow Variable
    :param clock: epoch seconds, for the breaker
    :param rng: source of the jitter
    :param waiter: a threading.Event (or one that records instead of sleeping) whose `wait` spaces
        the attempts; `on_kill` sets it, which ends a wait at once and stops further attempts
    """

    template_fields: Sequence[str] = ("endpoint", "data", "headers")
    template_fields_renderers = {"data": "json", "headers": "json"}
    # Copying a task must not split the state these share with the caller, nor copy a lock.
    shallow_copy_attrs: Sequence[str] = ("response_check", "breaker_store", "clock", "waiter")

    def __init__(
        self,
        *,
        http_conn_id: str,
        endpoint: str,
        method: str = "GET",
        data: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        response_check: Callable[[requests.Response], bool] | None = None,
        skip_on_empty: bool = True,
        max_attempts: int = 4,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        request_timeout: float = 30.0,
        breaker_name: str | None = None,
        failure_threshold: int = 5,
        breaker_cooldown: timedelta = timedelta(minutes=5),
        breaker_store: BreakerStore | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        waiter: threading.Event | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.http_conn_id = http_conn_id
        self.endpoint = endpoint
        self.method = method.upper()
        self.data = data
        self.headers = headers or {}
        self.response_check = response_check
        self.skip_on_empty = skip_on_empty
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.request_timeout = request_timeout
        self.breaker_name = breaker_name or http_conn_id
        self.failure_threshold = failure_threshold
        self.breaker_cooldown = breaker_cooldown
        self.breaker_store = breaker_store
        self.clock = clock
        self.rng = rng
        self.waiter = waiter
        self._session: requests.Session | None = None

    def execute(self, context: Context) -> Any:
        # Created here, not in __init__: the DAG processor never needs them, and a lock cannot be copied.
        self.waiter = self.waiter or threading.Event()
        self.rng = self.rng or random.Random()
        url = join_url(base_url(require_connection(self.http_conn_id)), self.endpoint)

        from airflow.providers.http.hooks.http import HttpHook

        # The hook configures the session from the connection: auth, headers, TLS, proxies.
        hook = HttpHook(method=self.method, http_conn_id=self.http_conn_id)
        self._session = hook.get_conn(
            headers=self.headers,
            extra_options={"timeout": self.request_timeout, "check_response": False},
        )
        try:
            request = self._prepare(self._session, url)
            breaker = CircuitBreaker(
                self.breaker_name,
                self.breaker_store or VariableBreakerStore(),
                failure_threshold=self.failure_threshold,
                cooldown=self.breaker_cooldown,
                clock=self.clock,
            )
            is_trial = breaker.before_call()
            try:
                response = self._request_with_retries(hook, self._session, request, breaker)
            except AirflowTaskTerminated:
                # A request cut short by on_kill says nothing about the API's health.
                if is_trial:
                    breaker.cancel_trial()
                raise
        finally:
            self._session.close()
        breaker.record_success()
        return self._result(response, redact_url(request.url))

    def on_kill(self) -> None:
        if self.waiter is not None:
            self.waiter.set()
        # Frees pooled connections; a request already in flight still ends by its timeout.
        if self._session is not None:
            self._session.close()

    def _prepare(self, session: requests.Session, url: str) -> requests.PreparedRequest:
        """The request, or AirflowFailException when it cannot be made (bad URL or header): no retry fixes that."""
        import requests

        # The same split as HttpHook.run: GET sends data as query parameters, HEAD sends none.
        if self.method == "GET":
            request = requests.Request(self.method, url, params=self.data)
        elif self.method == "HEAD":
            request = requests.Request(self.method, url)
        else:
            request = requests.Request(self.method, url, data=self.data)
        try:
            return session.prepare_request(request)
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, ValueError) as error:
            raise AirflowFailException(
                f"cannot build {self.method} {redact_url(url)} from connection {self.http_conn_id!r} "
                f"and endpoint {self.endpoint!r}: {type(error).__name__}"
            ) from None

    def _request_with_retries(
        self, hook: HttpHook, session: requests.Session, request: requests.PreparedRequest, breaker: CircuitBreaker
    ) -> requests.Response:
        import requests

        shown = redact_url(request.url)
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                delay = full_jitter_delay(attempt - 2, self.base_delay, self.max_delay, self.rng)
                self.log.info("Waiting %.2f s before attempt %d of %d", delay, attempt, self.max_attempts)
                self.waiter.wait(delay)
            self._stop_if_killed()
            try:
                response = hook.run_and_check(session, request, hook.merged_extra)
            except requests.RequestException as error:
                # Refused, dropped or timed-out connections, and bodies cut off mid-transfer
                # (ChunkedEncodingError): the API may answer the next attempt.
                failure = type(error).__name__
            else:
                if not is_retryable_status(response.status_code):
                    return response
                failure = f"HTTP {response.status_code} {response.reason}"
            self.log.warning("Attempt %d of %d, %s %s: %s", attempt, self.max_attempts, self.method, shown, failure)
        # A request cut short by on_kill says nothing about the API's health.
        self._stop_if_killed()
        breaker.record_failure()
        raise AirflowException(f"{self.method} {shown} failed {self.max_attempts} times; last error: {failure}")

    def _stop_if_killed(self) -> None:
        if self.waiter.is_set():
            raise AirflowTaskTerminated(f"{self.task_id} was killed; no further requests are sent")

    def _result(self, response: requests.Response, shown: str) -> Any:
        if not response.ok:
            self._log_body(response)
            raise AirflowFailException(
                f"{self.method} {shown} answered HTTP {response.status_code} {response.reason}. "
                "Client errors are not retried: fix the request (the task log shows the start of the answer)."
            )
        body = parse_body(response)
        if self.skip_on_empty and is_empty(body):
            raise AirflowSkipException(f"{self.method} {shown} returned an empty response ({body!r}); nothing to do.")
        if self.response_check is not None and not self.response_check(response):
            self._log_body(response)
            raise AirflowException(
                f"response_check rejected the answer of {self.method} {shown} (HTTP {response.status_code}); "
                "the task log shows the start of it"
            )
        return body

    def _log_body(self, response: requests.Response) -> None:
        # The task log masks the secrets Airflow knows of; exceptions travel on into alerts.
        self.log.warning("Start of the answer: %r", response.text[:BODY_EXCERPT_CHARS])
