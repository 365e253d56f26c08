"""ResilientHttpOperator against a scripted HTTP(S) server on 127.0.0.1: what it sends, and what it makes of answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from {{ cookiecutter.project_slug }}.connections import MissingConnectionError
from {{ cookiecutter.project_slug }}.resilient_http import ResilientHttpOperator, json_has_keys

from local_servers import Certificates, Reply, Server, make_certificates, serve
from resilient_http_runs import CONN_VARIABLE, make_operator, scripted_api


@pytest.fixture
def api(monkeypatch) -> Iterator[Server]:
    with scripted_api(monkeypatch) as server:
        yield server


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def test_success_returns_the_parsed_json(api):
    api.queue(Reply(200, {"records": [1, 2]}))
    operator = make_operator(data={"date": "2026-01-01"}, headers={"X-Api-Key": "secret"})

    assert operator.execute(context={}) == {"records": [1, 2]}
    [request] = api.requests
    assert request.target == "/items?date=2026-01-01"
    assert request.headers["X-Api-Key"] == "secret"
    assert operator.waiter.waits == []


def test_post_sends_data_as_the_body(api):
    api.queue(Reply(201, {"id": 1}))
    operator = make_operator(method="POST", data=json.dumps({"name": "x"}))

    assert operator.execute(context={}) == {"id": 1}
    assert api.requests[0].method == "POST"
    assert api.requests[0].json() == {"name": "x"}


def test_text_answers_are_returned_as_text(api):
    api.queue(Reply(200, b"plain words", "text/plain"))

    assert make_operator().execute(context={}) == "plain words"


def test_the_connections_credentials_and_header_extras_are_sent(api, monkeypatch):
    connection = {"conn_type": "http", "host": api.url, "login": "user", "password": "pw", "extra": {"X-Team": "a"}}
    monkeypatch.setenv(CONN_VARIABLE, json.dumps(connection))
    api.queue(Reply(200, {"ok": True}))

    make_operator().execute(context={})

    [request] = api.requests
    assert request.headers["Authorization"] == "Basic dXNlcjpwdw=="
    assert request.headers["X-Team"] == "a"


def test_an_https_connection_uri_is_called_over_https(certificates, monkeypatch):
    with serve(tls=certificates.server_context) as api:
        # As a user writes it: a URI whose scheme is https; the CA to trust is the verify extra.
        monkeypatch.setenv(CONN_VARIABLE, f"{api.url}?verify={certificates.ca_file}")
        api.queue(Reply(200, {"over": "tls"}))

        assert make_operator().execute(context={}) == {"over": "tls"}
        assert api.paths == ["/items"]


@pytest.mark.parametrize("body", [b"", b"  ", b"null", b"[]", b"{}"])
def test_an_empty_answer_skips_the_task(api, body):
    api.queue(Reply(200, body))

    with pytest.raises(AirflowSkipException, match="empty response"):
        make_operator().execute(context={})


def test_a_failed_response_check_fails_the_task_without_the_body_in_the_message(api):
    api.queue(Reply(200, {"unexpected": "token-51c0"}))
    operator = make_operator(response_check=json_has_keys("records"))

    with pytest.raises(AirflowException, match=r"response_check rejected the answer of GET .*/items") as error:
        operator.execute(context={})
    assert not isinstance(error.value, AirflowSkipException | AirflowFailException)
    assert "token-51c0" not in str(error.value)


def test_a_passing_response_check_lets_the_answer_through(api):
    api.queue(Reply(200, {"records": []}))

    assert make_operator(response_check=json_has_keys("records")).execute(context={}) == {"records": []}


def test_a_missing_connection_fails_at_once_naming_the_variable(monkeypatch):
    monkeypatch.delenv(CONN_VARIABLE, raising=False)

    with pytest.raises(MissingConnectionError, match=f"Connection 'test_api' is not defined: set {CONN_VARIABLE}"):
        make_operator().execute(context={})
    assert issubclass(MissingConnectionError, AirflowFailException)


class RunWithoutLogicalDate:
    logical_date = None
    run_after = datetime(2026, 1, 2, 8, 30, tzinfo=UTC)


def test_endpoint_data_and_headers_are_templated(api):
    operator = make_operator(
        endpoint="items/{% raw %}{{ run_id }}{% endraw %}",
        data={"since": "{% raw %}{{ (dag_run.logical_date or dag_run.run_after) | ds }}{% endraw %}"},
        headers={"X-Run": "{% raw %}{{ run_id }}{% endraw %}"},
    )
    assert set(ResilientHttpOperator.template_fields) == {"endpoint", "data", "headers"}

    operator.render_template_fields(context={"run_id": "manual_1", "dag_run": RunWithoutLogicalDate()})

    assert operator.endpoint == "items/manual_1"
    assert operator.data == {"since": "2026-01-02"}
    assert operator.headers == {"X-Run": "manual_1"}
