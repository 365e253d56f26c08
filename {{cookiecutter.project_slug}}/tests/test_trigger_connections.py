"""The connection's settings as HttpConditionTrigger applies them in the triggerer: auth, headers, TLS, proxy."""

from __future__ import annotations

import json

import pytest

from local_servers import Certificates, Reply, make_certificates, serve
from trigger_runs import CONN_VARIABLE, READY, export_api, make_trigger, run_trigger


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def test_basic_auth_and_header_extras_are_sent(monkeypatch):
    extra = {"X-Team": "data", "Authorization-Scope": "exports"}
    with export_api(monkeypatch) as api:
        connection = {"conn_type": "http", "host": api.url, "login": "user", "password": "pw", "extra": extra}
        monkeypatch.setenv(CONN_VARIABLE, json.dumps(connection))

        assert run_trigger(make_trigger())[0]["status"] == "success"

    [request] = api.requests
    assert request.headers["Authorization"] == "Basic dXNlcjpwdw=="
    assert request.headers["X-Team"] == "data" and request.headers["Authorization-Scope"] == "exports"


def test_an_https_connection_is_verified_with_its_ca_bundle(certificates, monkeypatch):
    with serve(Reply(200, READY), tls=certificates.server_context) as api:
        monkeypatch.setenv(CONN_VARIABLE, f"{api.url}?verify={certificates.ca_file}")

        assert run_trigger(make_trigger())[0]["status"] == "success"
        assert api.paths == ["/exports/2026-01-01"]


def test_an_https_server_the_connection_does_not_trust_is_never_ready(certificates, monkeypatch):
    with serve(tls=certificates.server_context) as api:
        monkeypatch.setenv(CONN_VARIABLE, api.url)

        [event] = run_trigger(make_trigger(timeout=1.0))

        assert event["status"] == "timeout" and "not reachable (ConnectError)" in event["message"]
        assert api.requests == []


def test_the_proxy_extra_routes_the_polls(monkeypatch):
    with serve(Reply(200, READY)) as proxy:
        connection = {"conn_type": "http", "host": "http://exports.invalid", "extra": {"proxy": proxy.url}}
        monkeypatch.setenv(CONN_VARIABLE, json.dumps(connection))

        assert run_trigger(make_trigger())[0]["status"] == "success"
        # A request through a proxy names its absolute URL on the request line.
        assert [request.target for request in proxy.requests] == ["http://exports.invalid/exports/2026-01-01"]


def test_a_malformed_extra_is_an_error_naming_it(monkeypatch):
    connection = {"conn_type": "http", "host": "http://127.0.0.1:1", "extra": {"verify": 3}}
    monkeypatch.setenv(CONN_VARIABLE, json.dumps(connection))

    [event] = run_trigger(make_trigger())

    assert event["status"] == "error" and "connection 'export_api': extra 'verify'" in event["message"]
