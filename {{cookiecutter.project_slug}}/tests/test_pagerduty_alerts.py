"""The PagerDuty pager, through the pagerduty provider's notifier, to an Events API on 127.0.0.1.

The pagerduty client accepts only https:// base URLs and the provider's hook gives no way to
choose one, so the tests replace the client's default base URL
(``pagerduty.EventsApiV2Client.default_base_url``) and trust a throwaway certificate. Everything
else, from the notifier to the HTTPS request, is the real code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pagerduty
import pytest

from {{ cookiecutter.project_slug }} import alerting, pagerduty_alerts, project_settings
from {{ cookiecutter.project_slug }}.alerting import on_failure, on_retry, on_success

from alert_contexts import FINAL_TRY, RUN_ID, task_context
from local_servers import Certificates, Reply, Request, Server, make_certificates, serve


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(alerting, "_reported_missing", set())
    caplog.set_level(logging.INFO, logger=alerting.log.name)


def accepted(request: Request) -> Reply:
    dedup_key = request.json().get("dedup_key", "generated-by-pagerduty")
    return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})


@pytest.fixture
def events_api(monkeypatch: pytest.MonkeyPatch, certificates: Certificates) -> Iterator[Server]:
    with serve(tls=certificates.server_context) as server:
        server.default = accepted
        monkeypatch.setattr(pagerduty.EventsApiV2Client, "default_base_url", property(lambda client: server.url))
        monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
        connection = {"conn_type": "pagerduty_events", "password": "integration-key"}
        monkeypatch.setenv("AIRFLOW_CONN_PAGERDUTY_ALERTS", json.dumps(connection))
        yield server


def pages(events_api: Server) -> list[dict]:
    assert all(request.path == "/v2/enqueue" for request in events_api.requests)
    return [request.json() for request in events_api.requests]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == alerting.log.name and r.levelno >= logging.ERROR]


def test_pagerduty_is_the_projects_pager():
    assert alerting.PAGER == {"pagerduty": pagerduty_alerts}


def test_a_critical_failure_pages_with_what_the_on_call_needs(events_api, caplog):
    on_failure(task_context(tags=("critical",), error=ValueError("boom")))

    [event] = pages(events_api)
    assert event["routing_key"] == "integration-key"
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == f"orders/{RUN_ID}/load"
    assert event["payload"]["summary"] == "orders.load failed (try 4 of 4)"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["source"] == project_settings.PROJECT_SLUG
    assert event["payload"]["component"] == "orders"
    assert event["payload"]["custom_details"]["Error"] == "ValueError: boom"
    assert event["links"][0]["href"].endswith("tasks/load?try_number=4")
    assert errors(caplog) == []


def test_retries_and_other_failures_never_page(events_api):
    on_retry(task_context(tags=("critical",), try_number=1))
    on_failure(task_context(tags=("finance",)))

    assert pages(events_api) == []


def test_recovery_resolves_the_same_page(events_api):
    on_failure(task_context(tags=("critical",), try_number=FINAL_TRY))
    on_success(task_context(tags=("critical",), try_number=FINAL_TRY + 1))

    trigger, resolve = pages(events_api)
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"]


def test_a_pagerduty_outage_is_logged_as_an_error_and_never_raised(events_api, caplog):
    events_api.default = Reply(400, {"status": "invalid event", "message": "Event object is invalid"})

    on_failure(task_context(tags=("critical",)))

    assert errors(caplog) == [f"Alert channel pagerduty failed to send 'failed' for orders/{RUN_ID}/load"]


def test_without_the_connection_one_warning_says_how_to_set_it(events_api, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_PAGERDUTY_ALERTS")

    on_failure(task_context(tags=("critical",)))
    on_failure(task_context(tags=("critical",)))

    assert events_api.requests == [] and errors(caplog) == []
    warnings = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "pagerduty" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "connection 'pagerduty_alerts' is not defined" in warnings[0]
    assert "AIRFLOW_CONN_PAGERDUTY_ALERTS=" in warnings[0]
