"""Deferrable sensors: they hand the wait to the triggerer at once, so no worker slot sits idle."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from .connections import require_connection
from .http_connections import base_url, join_url, redact_url
from .triggers import HttpConditionTrigger

# Headroom for the triggerer's own timeout, which only fires if the trigger never reports back.
TRIGGER_TIMEOUT_MARGIN = timedelta(minutes=5)


class HttpConditionSensor(BaseSensorOperator):
    """Wait until ``GET <connection base URL>/<endpoint>`` answers as expected; return its JSON.

    The wait runs in the triggerer (HttpConditionTrigger): ``execute`` defers straight away, so
    the task holds a worker slot only for a moment at start and end. The connection is read at
    run time, never when the DAG file is parsed: here, to fail at once if it is missing, and again
    in the triggerer, which uses its credentials, headers, TLS and proxy settings. The trigger's
    stored kwargs hold only the connection id.

    ``poke_interval`` and ``timeout`` keep their BaseSensorOperator meaning (seconds between polls,
    and the total wait); ``soft_fail`` turns a timeout or error into a skip. The returned JSON
    becomes this task's XCom, so point it at a small status endpoint, not a data download.

    A refused request fails the task: without retries when the request itself is wrong (400, 405,
    410), with the usual retries when the credentials were refused (401, 403, 407), since a retry
    reads the connection again.

    :param http_conn_id: the connection holding the base URL and how to call it.
    :param endpoint: path under the base URL (templated).
    :param expected_status: the HTTP status that counts as a match.
    :param json_field: dotted path into the response JSON that must equal ``expected_value``.
    :param expected_value: the value ``json_field`` must have (templated).
    :param request_timeout: seconds one request may take.
    """

    template_fields: Sequence[str] = ("endpoint", "expected_value")

    def __init__(
        self,
        *,
        http_conn_id: str,
        endpoint: str = "",
        expected_status: int = 200,
        json_field: str | None = None,
        expected_value: Any = None,
        request_timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.http_conn_id = http_conn_id
        self.endpoint = endpoint
        self.expected_status = expected_status
        self.json_field = json_field
        self.expected_value = expected_value
        self.request_timeout = request_timeout

    def execute(self, context: Context) -> None:
        url = join_url(base_url(require_connection(self.http_conn_id)), self.endpoint)
        self.log.info("Deferring to the triggerer to wait for %s", redact_url(url))
        trigger = HttpConditionTrigger(
            http_conn_id=self.http_conn_id,
            endpoint=self.endpoint,
            started_at=datetime.now(UTC),
            timeout=self.timeout,
            poll_interval=self.poke_interval,
            expected_status=self.expected_status,
            json_field=self.json_field,
            expected_value=self.expected_value,
            request_timeout=self.request_timeout,
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + self.request_timeout) + TRIGGER_TIMEOUT_MARGIN,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        status = event.get("status")
        if status == "success":
            self.log.info("Condition met after %s poll(s)", event.get("polls"))
            return event.get("payload")
        if status == "timeout":
            raise AirflowSensorTimeout(event.get("message", "timed out"))
        message = f"{self.task_id} cannot wait for its condition: {event.get('message', event)}"
        if event.get("retryable"):
            raise AirflowException(message)
        raise AirflowFailException(message)
