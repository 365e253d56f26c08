"""ResilientHttpOperator against a scripted HTTP server on 127.0.0.1; waits are recorded, never slept."""

from __future__ import annotations

import json
import random
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    AirflowTaskTerminated,
)

from {{ cookiecutter.project_slug }}.circuit_breaker import CircuitOpenError, InMemoryBreakerStore
from {{ cookiecutter.project_slug }}.resilient_http import ResilientHttpOperator, json_has_keys

CONN_ID = "test_api"
SEED = 7


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"


@dataclass
class ScriptedApi:
    """Answers each request with the next queued reply, and remembers what it was asked."""

    replies: deque[Reply] = field(default_factory=deque)
    requests: list[dict] = field(default_factory=list)
    # A reply of None holds the request until the test ends, to provoke a read timeout.
    release_held: threading.Event = field(default_factory=threading.Event)

    def queue(self, *replies: Reply | None) -> None:
        self.replies.extend(replies)


def json_reply(payload, status: int = 200) -> Reply:
    return Reply(status, json.dumps(payload).encode())


def handler_for(api: ScriptedApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.answer()

        def do_POST(self) -> None:
            self.answer()

        def answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            api.requests.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
            )
            reply = api.replies.popleft() if api.replies else Reply(599, b"no reply queued for this request")
            if reply is None:
                api.release_held.wait()
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def api(monkeypatch) -> Iterator[ScriptedApi]:
    scripted = ScriptedApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(scripted))
    # A short poll interval only makes shutdown quick; requests are served as they arrive.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"http://127.0.0.1:{server.server_port}")
    try:
        yield scripted
    finally:
        scripted.release_held.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def closed_port(monkeypatch) -> int:
    """A local port nothing listens on, so connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"http://127.0.0.1:{port}")
    return port


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


def test_success_returns_the_parsed_json(api):
    api.queue(json_reply({"records": [1, 2]}))
    operator = make_operator(data={"date": "2026-01-01"}, headers={"X-Api-Key": "secret"})

    assert operator.execute(context={}) == {"records": [1, 2]}
    [request] = api.requests
    assert request["path"] == "/items?date=2026-01-01"
    assert request["headers"]["X-Api-Key"] == "secret"
    assert operator.waiter.waits == []


def test_post_sends_data_as_the_body(api):
    api.queue(json_reply({"id": 1}, status=201))
    operator = make_operator(method="POST", data=json.dumps({"name": "x"}))

    assert operator.execute(context={}) == {"id": 1}
    assert api.requests[0]["method"] == "POST"
    assert json.loads(api.requests[0]["body"]) == {"name": "x"}


def test_text_answers_are_returned_as_text(api):
    api.queue(Reply(200, b"plain words", "text/plain"))

    assert make_operator().execute(context={}) == "plain words"


def test_5xx_and_429_are_retried_with_full_jitter_waits(api):
    api.queue(Reply(503), Reply(502), Reply(429), json_reply({"ok": True}))
    operator = make_operator(max_attempts=4)

    assert operator.execute(context={}) == {"ok": True}
    assert len(api.requests) == 4
    caps = [1.0, 2.0, 3.0]  # base_delay * 2**n, the last one held down by max_delay
    waits = operator.waiter.waits
    assert all(0 <= wait <= cap for wait, cap in zip(waits, caps, strict=True))
    same_draws = random.Random(SEED)
    assert waits == [same_draws.uniform(0, cap) for cap in caps]


def test_a_client_error_fails_at_once_without_retrying(api):
    api.queue(Reply(400, b'{"error": "bad date"}'))
    operator = make_operator()

    with pytest.raises(AirflowFailException, match=r"HTTP 400 .*bad date"):
        operator.execute(context={})
    assert len(api.requests) == 1
    assert operator.waiter.waits == []


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
    api.queue(None, json_reply({"ok": True}))
    operator = make_operator(request_timeout=0.2)

    assert operator.execute(context={}) == {"ok": True}
    assert len(api.requests) == 2


@pytest.mark.parametrize("body", [b"", b"  ", b"null", b"[]", b"{}"])
def test_an_empty_answer_skips_the_task(api, body):
    api.queue(Reply(200, body))

    with pytest.raises(AirflowSkipException, match="empty response"):
        make_operator().execute(context={})


def test_a_failed_response_check_fails_the_task(api):
    api.queue(json_reply({"unexpected": []}))
    operator = make_operator(response_check=json_has_keys("records"))

    with pytest.raises(AirflowException, match=r"response_check rejected .*unexpected") as error:
        operator.execute(context={})
    assert not isinstance(error.value, AirflowSkipException | AirflowFailException)


def test_a_passing_response_check_lets_the_answer_through(api):
    api.queue(json_reply({"records": []}))

    assert make_operator(response_check=json_has_keys("records")).execute(context={}) == {"records": []}


def test_breaker_opens_after_failed_tries_then_fails_fast_without_a_request(api):
    store, clock = InMemoryBreakerStore(), FakeClock()

    def new_try() -> ResilientHttpOperator:
        return make_operator(max_attempts=2, failure_threshold=2, breaker_store=store, clock=clock)

    api.queue(*[Reply(503)] * 4)
    for _ in range(2):
        with pytest.raises(AirflowException, match="failed 2 times"):
            new_try().execute(context={})
    assert len(api.requests) == 4

    with pytest.raises(CircuitOpenError, match=f"'{CONN_ID}' is open until 2026-01-01T00:05:00"):
        new_try().execute(context={})
    assert len(api.requests) == 4


def test_a_client_error_does_not_count_against_the_breaker(api):
    store = InMemoryBreakerStore()
    api.queue(Reply(404), Reply(404), json_reply({"ok": True}))
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


def test_on_kill_ends_a_pending_wait_and_stops_retrying(api):
    api.queue(Reply(503), json_reply({"never": "fetched"}))
    waiter = SignallingEvent()
    operator = make_operator(base_delay=3600, max_delay=3600, rng=LongestDelay(), waiter=waiter)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            operator.execute(context={})
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        assert waiter.waiting.wait(timeout=10), "the operator never started waiting"
        operator.on_kill()
        worker.join(timeout=10)
        assert not worker.is_alive(), "on_kill did not end the hour-long wait"
    finally:
        waiter.set()  # never leave the worker blocked for an hour when on_kill fails
        worker.join(timeout=10)

    assert len(outcome) == 1 and isinstance(outcome[0], AirflowTaskTerminated)
    assert len(api.requests) == 1


def test_endpoint_data_and_headers_are_templated(api):
    operator = make_operator(
        endpoint="{% raw %}items/{{ ds }}{% endraw %}",
        data={"since": "{% raw %}{{ ds }}{% endraw %}"},
        headers={"X-Run": "{% raw %}{{ run_id }}{% endraw %}"},
    )
    assert set(ResilientHttpOperator.template_fields) == {"endpoint", "data", "headers"}

    operator.render_template_fields(context={"ds": "2026-01-01", "run_id": "manual_1"})

    assert operator.endpoint == "items/2026-01-01"
    assert operator.data == {"since": "2026-01-01"}
    assert operator.headers == {"X-Run": "manual_1"}
