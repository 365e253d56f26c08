"""Deferrable sensor: wait for an outside system without holding a worker slot.

`wait_for_export` asks the `example_export_api` connection for `GET /exports/<YYYY-MM-DD>`
(the run's logical date or, without one, the day it was due to run) until it answers 200 with
`{"state": "ready", ...}`. The polling runs
in the triggerer, so hundreds of these waits cost no worker slots; `sensor_pool` still caps how
many start at once. The JSON that ends the wait becomes the sensor's XCom, and `load_export`
reads it.

Point the connection at the API, e.g. `AIRFLOW_CONN_EXAMPLE_EXPORT_API=https://exports.example.com`.
The triggerer reads it when the wait starts and calls with its credentials, headers, TLS and
proxy settings; the trigger's stored arguments hold only the connection id. A refused request
fails the task: at once when the request is wrong, after the task's retries when the
credentials are refused (a retry reads the connection again).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from {{ cookiecutter.project_slug }}.dag_defaults import default_args
from {{ cookiecutter.project_slug }}.run_dates import RUN_DATE_TEMPLATE
from {{ cookiecutter.project_slug }}.sensors import HttpConditionSensor


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    tags=["example", "sensor", "deferrable"],
    doc_md=__doc__,
)
def example_deferrable_sensor():
    wait_for_export = HttpConditionSensor(
        task_id="wait_for_export",
        http_conn_id="example_export_api",
        # A run triggered without a logical date has no ds; every run has run_after.
        endpoint=f"exports/{RUN_DATE_TEMPLATE}",
        json_field="state",
        expected_value="ready",
        poke_interval=30,
        timeout=timedelta(hours=6),
        pool="sensor_pool",
    )

    @task
    def load_export(export: dict) -> int:
        rows = int(export.get("rows", 0))
        print(f"Export ready with {rows} rows: {export}")
        return rows

    load_export(wait_for_export.output)


example_deferrable_sensor()
