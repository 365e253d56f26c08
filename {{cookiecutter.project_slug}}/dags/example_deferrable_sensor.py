"""Deferrable sensor: wait for an outside system without holding a worker slot.

`wait_for_export` asks the `example_export_api` connection for `GET /exports/<YYYY-MM-DD>`
(the day the run is due) until it answers 200 with `{"state": "ready", ...}`. The polling runs
in the triggerer, so hundreds of these waits cost no worker slots; `sensor_pool` still caps how
many start at once. The JSON that ends the wait becomes the sensor's XCom, and `load_export`
reads it.

Point the connection at the API, e.g. `AIRFLOW_CONN_EXAMPLE_EXPORT_API=https://exports.example.com`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from {{ cookiecutter.project_slug }}.dag_defaults import default_args
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
        # Manual runs have no logical date (so no ds) on Airflow 3; every run has run_after.
        endpoint="exports/{% raw %}{{ dag_run.run_after | ds }}{% endraw %}",
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
