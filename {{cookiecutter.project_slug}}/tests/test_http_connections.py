"""One connection means one URL everywhere: the operator (through HttpHook's session) and the trigger
(through httpx) read a connection the same way, checked by what arrives at a real local server."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from datetime import UTC, datetime

import pytest
from airflow.sdk import Connection

from {{ cookiecutter.project_slug }}.circuit_breaker import InMemoryBreakerStore
from {{ cookiecutter.project_slug }}.http_connections import (
    HttpSettings,
    base_url,
    join_url,
    redact_url,
    without_query_strings,
)
from {{ cookiecutter.project_slug }}.resilient_http import ResilientHttpOperator
from {{ cookiecutter.project_slug }}.triggers import HttpConditionTrigger

from local_servers import Reply, make_certificates, serve

CONN_VARIABLE = "AIRFLOW_CONN_SHARED_API"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://api.example.com", "https://api.example.com"),
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        # HttpHook style: the scheme sits in the schema field.
        ("http://api.example.com:8443/https", "https://api.example.com:8443"),
    ],
)
def test_base_url_from_connection_uri(uri, expected):
    assert base_url(Connection.from_uri(uri, conn_id="api")) == expected


def test_base_url_keeps_a_full_url_given_as_host():
    connection = Connection(conn_id="api", conn_type="http", host="https://api.example.com/v2")
    assert base_url(connection) == "https://api.example.com/v2"


@pytest.mark.parametrize(
    ("base", "endpoint", "expected"),
    [
        ("http://h", "a/b", "http://h/a/b"),
        ("http://h/", "a", "http://h/a"),
        ("http://h", "/a", "http://h/a"),
        ("http://h", "", "http://h"),
    ],
)
def test_join_url(base, endpoint, expected):
    assert join_url(base, endpoint) == expected


def test_redact_url_keeps_where_the_call_went_and_nothing_secret():
    url = "https://user:pw@api.example.com:8443/v1/orders?api_key=k&date=2026-01-01#frag"
    assert redact_url(url) == "https://api.example.com:8443/v1/orders?..."
    assert redact_url("http://h/path") == "http://h/path"


def test_without_query_strings_cuts_every_url_in_a_text():
    text = "GET https://a.example/x?token=t1 then http://b.example/y?k=t2 (then done?)"
    assert without_query_strings(text) == "GET https://a.example/x?... then http://b.example/y?... (then done?)"


def test_settings_follow_httphooks_reading_of_extras():
    extra = {"verify": "false", "proxy": "http://proxy:3128", "timeout": 5, "X-Team": "data", "cert": ["c", "k"]}
    connection = Connection(
        conn_id="api", conn_type="http", host="api.example.com", login="u", password="p", extra=json.dumps(extra)
    )

    settings = HttpSettings.from_connection(connection)

    assert settings.base_url == "http://api.example.com"
    assert settings.auth == ("u", "p")
    assert settings.headers == {"X-Team": "data"}
    assert settings.verify is False
    assert settings.cert == ("c", "k")
    assert settings.proxies == {"http": "http://proxy:3128", "https": "http://proxy:3128"}


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"verify": 3}, "verify"),
        ({"proxies": ["p"]}, "proxies"),
        ({"trust_env": "maybe"}, "trust_env"),
        ({"max_redirects": "many"}, "max_redirects"),
    ],
)
def test_a_malformed_extra_names_the_connection_and_the_extra(extra, named):
    connection = Connection(conn_id="api", conn_type="http", host="h", extra=json.dumps(extra))
    with pytest.raises(ValueError, match=f"connection 'api': extra '{named}'"):
        HttpSettings.from_connection(connection)


class NoWait(threading.Event):
    def wait(self, timeout: float | None = None) -> bool:
        return self.is_set()


def call_with_the_operator() -> None:
    ResilientHttpOperator(
        task_id="call",
        http_conn_id="shared_api",
        endpoint="items",
        breaker_store=InMemoryBreakerStore(),
        rng=random.Random(1),
        waiter=NoWait(),
    ).execute(context={})


def call_with_the_trigger() -> None:
    trigger = HttpConditionTrigger(
        http_conn_id="shared_api", endpoint="items", started_at=datetime.now(UTC), timeout=30.0, json_field=None
    )

    async def first_event() -> dict:
        return [event.payload async for event in trigger.run()][0]

    assert asyncio.run(first_event())["status"] == "success"


@pytest.mark.parametrize(
    ("connection", "path"),
    [
        pytest.param("{url}/v1", "/v1/items", id="URI with a path"),
        pytest.param({"conn_type": "http", "host": "{url}/v2"}, "/v2/items", id="full URL as host"),
        pytest.param({"conn_type": "http", "host": "127.0.0.1", "port": "{port}"}, "/items", id="HttpHook style"),
    ],
)
def test_operator_and_trigger_call_the_same_url(connection, path, monkeypatch):
    with serve() as api:
        api.default = Reply(200, {"ok": True})
        port = api.url.rsplit(":", 1)[1]
        value = json.dumps(connection) if isinstance(connection, dict) else connection
        monkeypatch.setenv(CONN_VARIABLE, value.replace("{url}", api.url).replace('"{port}"', port))

        call_with_the_operator()
        call_with_the_trigger()

        assert api.paths == [path, path]


def test_operator_and_trigger_both_use_https_for_an_https_uri(tmp_path, monkeypatch):
    certificates = make_certificates(tmp_path)
    with serve(tls=certificates.server_context) as api:
        api.default = Reply(200, {"ok": True})
        monkeypatch.setenv(CONN_VARIABLE, f"{api.url}?verify={certificates.ca_file}")

        call_with_the_operator()
        call_with_the_trigger()

        # A plain-http request to a TLS server never gets an answer: both calls arrived over https.
        assert api.paths == ["/items", "/items"]
