"""Alert routing, channel outages and deadlines, for the channels chosen for this project.

Callbacks get the context a worker builds: a real DAG, task, task instance and DAG run.
{%- if cookiecutter.alert_chat == "slack" %}
Slack posts land on a local HTTP server that the ``slack_alerts`` connection points at.
{%- elif cookiecutter.alert_chat == "email" %}
Emails land on a local SMTP server (aiosmtpd) that the ``smtp_alerts`` connection points at.
{%- endif %}
{%- if cookiecutter.alert_pager == "pagerduty" %}
PagerDuty events land on a local HTTPS server. The pagerduty client accepts only https:// base URLs and
the provider's hook gives no way to choose one, so the tests replace the client's default base URL
(``pagerduty.EventsApiV2Client.default_base_url``) and trust a throwaway certificate. Everything else,
from the notifier to the HTTP request, is the real code.
{%- endif %}
"""

from __future__ import annotations

import asyncio
{%- if cookiecutter.alert_pager == "pagerduty" %}
import ipaddress
{%- endif %}
{%- if cookiecutter.alert_chat != "none" or cookiecutter.alert_pager != "none" %}
import json
{%- endif %}
import logging
{%- if cookiecutter.alert_chat == "email" %}
import socket
{%- endif %}
{%- if cookiecutter.alert_chat == "slack" or cookiecutter.alert_pager == "pagerduty" %}
import ssl
{%- endif %}
{%- if cookiecutter.alert_chat == "slack" or cookiecutter.alert_pager == "pagerduty" %}
import threading
{%- endif %}
import uuid
{%- if cookiecutter.alert_chat == "slack" or cookiecutter.alert_pager == "pagerduty" %}
from collections.abc import Callable, Iterator
{%- elif cookiecutter.alert_chat == "email" %}
from collections.abc import Iterator
{%- endif %}
{%- if cookiecutter.alert_chat == "slack" or cookiecutter.alert_pager == "pagerduty" %}
from contextlib import contextmanager
{%- endif %}
from datetime import UTC, datetime, timedelta
{%- if cookiecutter.alert_chat == "email" %}
from email import message_from_bytes, policy
from html import unescape
{%- endif %}
{%- if cookiecutter.alert_chat == "slack" or cookiecutter.alert_pager == "pagerduty" %}
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
{%- endif %}
{%- if cookiecutter.alert_pager == "pagerduty" %}
from pathlib import Path
{%- endif %}
from typing import Any
from urllib.parse import quote

{% if cookiecutter.alert_pager == "pagerduty" -%}
import pagerduty
{% endif -%}
import pytest
{%- if cookiecutter.alert_chat == "email" %}
from aiosmtpd.controller import Controller
{%- endif %}
from airflow.api_fastapi.core_api.datamodels.dag_run import DAGRunResponse
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Context, dag
from airflow.sdk.api.datamodels._generated import DagRun, TIRunContext
from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
from airflow.serialization.decoders import decode_deadline_alert
from airflow.serialization.serialized_objects import DagSerialization
from airflow.triggers.callback import CallbackTrigger
{%- if cookiecutter.alert_pager == "pagerduty" %}
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
{%- endif %}

from {{ cookiecutter.project_slug }} import alerting
from {{ cookiecutter.project_slug }}.alerting import callbacks, finish_within, on_failure, on_retry, on_success
{%- if cookiecutter.alert_chat == "email" %}
from {{ cookiecutter.project_slug }}.dag_defaults import CONTACT_EMAIL
{%- endif %}

CHAT = {{ cookiecutter.alert_chat | tojson }}
PAGER = {{ cookiecutter.alert_pager | tojson }}
WHEN = datetime(2026, 1, 2, tzinfo=UTC)
RUN_ID = "scheduled__2026-01-02T00:00:00+00:00"
FINAL_TRY = 4  # retries=3 in task_context, so the fourth try is the last


def task_context(
    *,
    tags: tuple[str, ...] = (),
    try_number: int = FINAL_TRY,
    error: BaseException | None = None,
    logical_date: datetime | None = WHEN,
    map_index: int = -1,
) -> Context:
    """The context a task callback gets, built the way the worker builds it."""
    with DAG("orders", schedule=None, tags=tags) as orders:
        load = EmptyOperator(task_id="load", retries=3)
    dag_run = DagRun(
        dag_id=orders.dag_id,
        run_id=RUN_ID,
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_after=WHEN,
        start_date=WHEN,
        end_date=None,
        run_type="scheduled",
        state="running",
        consumed_asset_events=[],
        partition_key=None,
    )
    # task_runner.parse() builds the worker's task instance with model_construct as well.
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=load.task_id,
        dag_id=orders.dag_id,
        run_id=RUN_ID,
        try_number=try_number,
        map_index=map_index,
        dag_version_id=uuid.uuid4(),
        task=load,
        start_date=WHEN,
        state="running",
        max_tries=load.retries,
        _ti_context_from_server=TIRunContext(dag_run=dag_run, max_tries=load.retries),
    )
    context = ti.get_template_context()
    # task_runner.main() adds the error just before finalize() runs the callbacks.
    context["exception"] = error
    return context


def deadline_context() -> dict[str, Any]:
    """The context the scheduler gives a deadline callback (Deadline.handle_miss)."""
    dag_run = DAGRunResponse.model_validate(
        {
            "run_id": RUN_ID,
            "dag_id": "orders",
            "logical_date": WHEN,
            "queued_at": WHEN,
            "start_date": WHEN,
            "end_date": None,
            "duration": None,
            "data_interval_start": WHEN,
            "data_interval_end": WHEN,
            "run_after": WHEN,
            "last_scheduling_decision": None,
            "run_type": "scheduled",
            "state": "running",
            "triggered_by": None,
            "triggering_user_name": None,
            "conf": {},
            "note": None,
            "dag_versions": [],
            "bundle_version": None,
            "dag_model": {"dag_display_name": "orders"},
            "partition_key": None,
            "partition_date": None,
        }
    )
    deadline = {"id": str(uuid.uuid4()), "deadline_time": WHEN + timedelta(minutes=90)}
    return {"dag_run": dag_run.model_dump(mode="json"), "deadline": deadline}


def run_trigger(trigger: CallbackTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def channel_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == alerting.log.name and record.levelno >= logging.ERROR
    ]


@pytest.fixture(autouse=True)
def direct_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts in these tests go straight to 127.0.0.1, never through a proxy from the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def alerting_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=alerting.log.name)
{%- if cookiecutter.alert_chat == "none" or cookiecutter.alert_pager == "none" %}


class Nowhere:
    """A channel this project did not choose: nothing can arrive there."""

    received = ()
{%- endif %}
{%- if cookiecutter.alert_chat == "slack" or cookiecutter.alert_pager == "pagerduty" %}


class Recorder(BaseHTTPRequestHandler):
    server: Endpoint

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.failing:
            status, reply = self.server.refusal
        else:
            self.server.accepted.append((self.path, body))
            status, reply = self.server.ok, self.server.reply(body)
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


class Endpoint(ThreadingHTTPServer):
    """A web service on 127.0.0.1 that keeps the bodies it accepts, or refuses them all once failing."""

    def __init__(
        self,
        reply: Callable[[bytes], bytes],
        *,
        ok: int,
        refusal: tuple[int, bytes],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", 0), Recorder)
        if tls:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.reply, self.ok, self.refusal = reply, ok, refusal
        self.accepted: list[tuple[str, bytes]] = []
        self.failing = False
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server_port}"


@contextmanager
def running(endpoint: Endpoint) -> Iterator[Endpoint]:
    # A short poll interval lets shutdown() return quickly.
    thread = threading.Thread(target=endpoint.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        endpoint.shutdown()
        endpoint.server_close()
        thread.join()
{%- endif %}
{%- if cookiecutter.alert_chat == "slack" %}


class SlackChannel:
    """A Slack incoming webhook on 127.0.0.1."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    @property
    def received(self) -> list[str]:
        """Each accepted message as Slack shows it: &amp;, &lt; and &gt; turned back into characters."""
        texts = [json.loads(body)["text"] for _, body in self.endpoint.accepted]
        return [text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for text in texts]

    def fail(self) -> None:
        self.endpoint.failing = True


@pytest.fixture
def chat(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackChannel]:
    slack = Endpoint(lambda body: b"ok", ok=200, refusal=(500, b"internal_error"))
    with running(slack):
        # SlackWebhookHook joins host and password into the webhook URL when the host has a scheme.
        connection = {"conn_type": "slackwebhook", "host": f"{slack.url}/services", "password": "T000/B000/secret"}
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ALERTS", json.dumps(connection))
        yield SlackChannel(slack)
{%- elif cookiecutter.alert_chat == "email" %}


class Mailbox:
    """An SMTP server on 127.0.0.1 that keeps the mail it accepts, or refuses it all once failing."""

    def __init__(self) -> None:
        self.mail: list[tuple[list[str], Any]] = []
        self.failing = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.failing:
            return "554 Transaction failed"
        self.mail.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"

    @property
    def received(self) -> list[str]:
        """Each accepted email as its reader sees it: the subject, then the body without HTML."""
        texts = []
        for _, message in self.mail:
            html = message.get_body(("html",)).get_content().strip()
            texts.append(f"{message['Subject']}\n{unescape(html.removeprefix('<pre>').removesuffix('</pre>'))}")
        return texts

    def fail(self) -> None:
        self.failing = True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def chat(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        extra = {"from_email": "airflow@example.com", "disable_ssl": True, "disable_tls": True, "retry_limit": 0}
        connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": controller.port, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", json.dumps(connection))
        yield mailbox
    finally:
        controller.stop()
{%- else %}


@pytest.fixture
def chat() -> Nowhere:
    return Nowhere()
{%- endif %}
{%- if cookiecutter.alert_pager == "pagerduty" %}


class PagerDuty:
    """The PagerDuty Events API v2 on 127.0.0.1."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    @property
    def received(self) -> list[dict[str, Any]]:
        assert all(path == "/v2/enqueue" for path, _ in self.endpoint.accepted)
        return [json.loads(body) for _, body in self.endpoint.accepted]

    def fail(self) -> None:
        self.endpoint.failing = True


def pagerduty_reply(body: bytes) -> bytes:
    dedup_key = json.loads(body).get("dedup_key", "generated-by-pagerduty")
    return json.dumps({"status": "success", "message": "Event processed", "dedup_key": dedup_key}).encode()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA file for clients, and a server context with a certificate it signed for 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.now(UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alerting test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_ski, critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    return ca_file, server_context


@pytest.fixture
def pager(monkeypatch: pytest.MonkeyPatch, certificates: tuple[Path, ssl.SSLContext]) -> Iterator[PagerDuty]:
    ca_file, server_context = certificates
    refusal = (400, b'{"status": "invalid event", "message": "Event object is invalid"}')
    events_api = Endpoint(pagerduty_reply, ok=202, refusal=refusal, tls=server_context)
    with running(events_api):
        monkeypatch.setattr(pagerduty.EventsApiV2Client, "default_base_url", property(lambda client: events_api.url))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        connection = {"conn_type": "pagerduty_events", "password": "integration-key"}
        monkeypatch.setenv("AIRFLOW_CONN_PAGERDUTY_ALERTS", json.dumps(connection))
        yield PagerDuty(events_api)
{%- else %}


@pytest.fixture
def pager() -> Nowhere:
    return Nowhere()
{%- endif %}


def test_the_channels_are_the_ones_chosen_for_the_project():
    assert list(alerting.CHAT) == ([CHAT] if CHAT != "none" else [])
    assert list(alerting.PAGER) == ([PAGER] if PAGER != "none" else [])


def test_callbacks_are_what_default_args_merges_in():
    assert callbacks() == {
        "on_failure_callback": on_failure,
        "on_retry_callback": on_retry,
        "on_success_callback": on_success,
    }


def test_an_alert_names_the_task_run_try_log_and_error():
    alert = alerting.Alert.from_context(alerting.FAILED, task_context(try_number=2, error=ValueError("boom")))

    assert alert.subject == "orders.load failed (try 2 of 4)"
    assert alert.details["Run"] == RUN_ID
    assert alert.details["Date"] == "logical date 2026-01-02T00:00:00+00:00"
    assert alert.details["Log"].endswith(f"/dags/orders/runs/{quote(RUN_ID)}/tasks/load?try_number=2")
    assert alert.details["Error"] == "ValueError: boom"
    assert alert.text.splitlines() == [alert.subject, *(f"{k}: {v}" for k, v in alert.details.items())]


def test_a_run_without_logical_date_is_dated_by_run_after():
    alert = alerting.Alert.from_context(alerting.FAILED, task_context(logical_date=None))

    assert alert.details["Date"] == "run after 2026-01-02T00:00:00+00:00"


def test_a_mapped_task_is_named_with_its_index():
    alert = alerting.Alert.from_context(alerting.FAILED, task_context(map_index=7))

    assert alert.subject.startswith("orders.load[7] failed")
    assert alert.key == f"orders/{RUN_ID}/load[7]"


def test_a_long_error_is_cut_short():
    alert = alerting.Alert.from_context(alerting.FAILED, task_context(error=RuntimeError("x" * 5000)))

    assert len(alert.details["Error"]) == alerting.MAX_ERROR_CHARS
    assert alert.details["Error"].startswith("RuntimeError: xxx")
    assert alert.details["Error"].endswith("...")


ROUTES = [
    pytest.param(on_failure, ("critical",), FINAL_TRY, True, "trigger", id="critical failure posts and pages"),
    pytest.param(on_failure, ("finance",), FINAL_TRY, True, None, id="other failure only posts"),
    pytest.param(on_retry, ("critical",), 1, True, None, id="retry only posts, even when critical"),
    pytest.param(on_success, ("critical",), 2, True, "resolve", id="critical recovery posts and resolves"),
    pytest.param(on_success, ("critical",), 1, False, None, id="first-try success is silent"),
    pytest.param(on_success, ("finance",), 2, False, None, id="other recovery is silent"),
]


@pytest.mark.parametrize(("callback", "tags", "try_number", "posts", "page_action"), ROUTES)
def test_severity_routing(callback, tags, try_number, posts, page_action, chat, pager, caplog):
    callback(task_context(tags=tags, try_number=try_number, error=ValueError("boom")))

    assert len(chat.received) == (1 if posts and CHAT != "none" else 0)
    expected_actions = [page_action] if page_action and PAGER != "none" else []
    assert [event["event_action"] for event in pager.received] == expected_actions
    assert channel_errors(caplog) == []
{%- if cookiecutter.alert_chat != "none" %}


def test_the_posted_message_shows_the_error_as_raised(chat, pager, caplog):
    # Braces would break a notifier that renders its message as a Jinja template; <, > and & are Slack markup.
    error = ValueError("{% raw %}bad {{ row }} {% if %}{% endraw %} <b> & co")

    on_retry(task_context(try_number=1, error=error))

    [message] = chat.received
    assert message.splitlines()[0].endswith("orders.load failed, will retry (try 1 of 4)")
    assert f"Run: {RUN_ID}" in message
    assert "Date: logical date 2026-01-02T00:00:00+00:00" in message
    assert "/dags/orders/runs/" in message
    assert "Error: ValueError: {% raw %}bad {{ row }} {% if %}{% endraw %} <b> & co" in message
    assert channel_errors(caplog) == []
{%- endif %}
{%- if cookiecutter.alert_chat == "slack" %}


def test_slack_gets_escaped_text_at_the_connections_webhook(chat):
    on_failure(task_context(error=ValueError("<b> & co")))

    [(path, body)] = chat.endpoint.accepted
    assert path == "/services/T000/B000/secret"
    assert "Error: ValueError: &lt;b&gt; &amp; co" in json.loads(body)["text"]
{%- elif cookiecutter.alert_chat == "email" %}


def test_email_goes_to_the_team_contact_as_escaped_html(chat):
    on_failure(task_context(error=ValueError("<b> & co")))

    [(recipients, message)] = chat.mail
    assert recipients == [CONTACT_EMAIL]
    assert message["From"] == "airflow@example.com"
    assert message["Subject"] == "[Airflow] orders.load failed (try 4 of 4)"
    assert "Error: ValueError: &lt;b&gt; &amp; co" in message.get_body(("html",)).get_content()
{%- endif %}
{%- if cookiecutter.alert_chat != "none" %}


def test_a_chat_outage_is_logged_and_never_raised(chat, pager, caplog):
    chat.fail()

    on_failure(task_context(tags=("critical",)))

    assert chat.received == []
    assert len(pager.received) == (1 if PAGER != "none" else 0)
    [error] = channel_errors(caplog)
    assert error.startswith(f"Alert channel {CHAT} failed to send 'failed' for orders/{RUN_ID}/load")
{%- endif %}
{%- if cookiecutter.alert_pager == "pagerduty" %}


def test_a_page_carries_what_the_on_call_needs(pager):
    on_failure(task_context(tags=("critical",), error=ValueError("boom")))

    [event] = pager.received
    assert event["routing_key"] == "integration-key"
    assert event["dedup_key"] == f"orders/{RUN_ID}/load"
    assert event["payload"]["summary"] == "orders.load failed (try 4 of 4)"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["component"] == "orders"
    assert event["payload"]["custom_details"]["Error"] == "ValueError: boom"
    assert event["links"][0]["href"].endswith("tasks/load?try_number=4")


def test_recovery_resolves_the_same_page(pager):
    on_failure(task_context(tags=("critical",), try_number=FINAL_TRY))
    on_success(task_context(tags=("critical",), try_number=FINAL_TRY + 1))

    trigger, resolve = pager.received
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"]


def test_a_pager_outage_is_logged_and_never_raised(chat, pager, caplog):
    pager.fail()

    on_failure(task_context(tags=("critical",)))

    assert pager.received == []
    assert len(chat.received) == (1 if CHAT != "none" else 0)
    [error] = channel_errors(caplog)
    assert error.startswith(f"Alert channel pagerduty failed to send 'failed' for orders/{RUN_ID}/load")


def test_a_missing_pager_connection_is_logged_and_never_raised(chat, pager, caplog, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_PAGERDUTY_ALERTS")

    on_failure(task_context(tags=("critical",)))

    assert len(chat.received) == (1 if CHAT != "none" else 0)
    [error] = channel_errors(caplog)
    assert error.startswith("Alert channel pagerduty failed")
{%- endif %}


def test_finish_within_is_a_queued_at_deadline_the_scheduler_can_store():
    alert = finish_within(minutes=90)

    @dag(schedule=None, deadline=alert, tags=["test"])
    def slow_orders():
        EmptyOperator(task_id="load")

    built = slow_orders()
    [stored] = [decode_deadline_alert(encoded) for encoded in DagSerialization.to_dict(built)["dag"]["deadline"]]

    assert built.deadline == [alert]
    assert type(stored.reference).__name__ == "DagRunQueuedAtDeadline"
    assert stored.interval == timedelta(minutes=90)
    assert stored.callback == alert.callback
    assert stored.callback.path == f"{alerting.__name__}.notify_deadline_missed"
    assert stored.callback.kwargs == {"minutes": 90}


@pytest.mark.parametrize("minutes", [0, -5])
def test_finish_within_needs_a_positive_number_of_minutes(minutes):
    with pytest.raises(ValueError, match="positive"):
        finish_within(minutes=minutes)


def test_a_missed_deadline_is_reported_through_the_triggerer_path(chat, caplog):
    callback = finish_within(minutes=90).callback
    trigger = CallbackTrigger(callback.path, {**callback.kwargs, "context": deadline_context()})

    events = run_trigger(trigger)

    assert [event["state"] for event in events] == ["running", "success"]
{%- if cookiecutter.alert_chat != "none" %}
    [message] = chat.received
{%- else %}
    [message] = [record.getMessage() for record in caplog.records if record.name == alerting.log.name]
{%- endif %}
    assert "orders run missed its deadline: not finished 90 minutes after it was queued." in message
    assert f"Run: {RUN_ID}" in message
    assert "Deadline: 2026-01-02 01:30:00+00:00" in message
{%- if cookiecutter.alert_chat != "none" %}


def test_a_deadline_alert_that_cannot_be_sent_fails_the_callback(chat):
    chat.fail()
    callback = finish_within(minutes=90).callback
    trigger = CallbackTrigger(callback.path, {**callback.kwargs, "context": deadline_context()})

    events = run_trigger(trigger)

    assert [event["state"] for event in events] == ["running", "failed"]
    assert chat.received == []
{%- endif %}
{%- if cookiecutter.alert_chat == "none" and cookiecutter.alert_pager == "none" %}


def test_without_channels_every_callback_is_silent(caplog):
    for callback in (on_failure, on_retry, on_success):
        callback(task_context(tags=("critical",), try_number=2, error=ValueError("boom")))

    assert [record for record in caplog.records if record.name == alerting.log.name] == []
{%- endif %}
