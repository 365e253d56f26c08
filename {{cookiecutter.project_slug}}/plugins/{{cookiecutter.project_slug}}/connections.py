"""The connections tasks need, and a failure that says how to define one that is missing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException


def connection_variable(conn_id: str) -> str:
    """The environment variable that defines a connection, e.g. AIRFLOW_CONN_WAREHOUSE."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def how_to_define(conn_id: str) -> str:
    return (
        f"set {connection_variable(conn_id)} (for `make run` and docker compose, in .env) "
        f"or add {conn_id!r} to the secrets backend"
    )


class MissingConnectionError(AirflowFailException):
    """A task needs a connection that no secrets backend, environment variable or the metadata DB defines.

    It fails the task without retries: another try would find the connection missing again.
    """

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        super().__init__(f"Connection {conn_id!r} is not defined: {how_to_define(conn_id)}.")


def require_connection(conn_id: str) -> Connection:
    """The connection, or MissingConnectionError naming the variable that defines it."""
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise MissingConnectionError(conn_id) from None


async def arequire_connection(conn_id: str) -> Connection:
    """require_connection for the triggerer's event loop."""
    try:
        return await BaseHook.aget_connection(conn_id)
    except AirflowNotFoundException:
        raise MissingConnectionError(conn_id) from None


def requires_connections(*conn_ids: str) -> Callable[[Any], None]:
    """A ``pre_execute`` hook for operators that look their connection up themselves.

    Stock operators (SQLExecuteQueryOperator, the SQL checks, ...) fail on a missing connection
    with an error that names the id but not how to define it; with
    ``pre_execute=requires_connections("warehouse")`` the task fails first, with both.
    """

    def check(context: Any) -> None:
        for conn_id in conn_ids:
            require_connection(conn_id)

    return check
