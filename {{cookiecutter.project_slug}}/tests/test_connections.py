"""A missing connection fails the task at once, saying which variable defines it."""

from __future__ import annotations

import asyncio

import pytest
from airflow.sdk.exceptions import AirflowFailException

from {{ cookiecutter.project_slug }}.connections import (
    MissingConnectionError,
    arequire_connection,
    connection_variable,
    require_connection,
    requires_connections,
)


def test_the_variable_is_airflows_naming_of_the_connection_id():
    assert connection_variable("warehouse") == "AIRFLOW_CONN_WAREHOUSE"
    assert connection_variable("example_api") == "AIRFLOW_CONN_EXAMPLE_API"


def test_a_defined_connection_is_returned(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://user@db.example.com:5432/dw")

    assert require_connection("warehouse").host == "db.example.com"
    assert asyncio.run(arequire_connection("warehouse")).host == "db.example.com"


def test_a_missing_connection_fails_without_retry_naming_the_variable(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE", raising=False)

    for attempt in (lambda: require_connection("warehouse"), lambda: asyncio.run(arequire_connection("warehouse"))):
        with pytest.raises(MissingConnectionError) as missing:
            attempt()
        assert isinstance(missing.value, AirflowFailException)
        assert str(missing.value) == (
            "Connection 'warehouse' is not defined: set AIRFLOW_CONN_WAREHOUSE (for `make run` and docker "
            "compose, in .env) or add 'warehouse' to the secrets backend."
        )


def test_the_pre_execute_hook_checks_every_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://db/dw")
    monkeypatch.delenv("AIRFLOW_CONN_ARCHIVE", raising=False)
    check = requires_connections("warehouse", "archive")

    with pytest.raises(MissingConnectionError, match="AIRFLOW_CONN_ARCHIVE"):
        check({})
    requires_connections("warehouse")({})
