"""Large XComs go to object storage: only a path is stored in the metadata DB.

[core] xcom_backend is common-io's XComObjectStorageBackend; values of 64 KiB or more are
written under [common.io] xcom_objectstorage_path (file:// locally, s3:// in production).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from {{ cookiecutter.project_slug }}.dag_defaults import default_args

ROWS = 5_000


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    tags=["example", "xcom"],
    doc_md=__doc__,
)
def example_large_xcom():
    @task
    def produce() -> list[dict]:
        return [{"id": number, "payload": "x" * 32} for number in range(ROWS)]

    @task
    def consume(rows: list[dict]) -> int:
        if len(rows) != ROWS:
            raise ValueError(f"expected {ROWS} rows back from object storage, got {len(rows)}")
        return len(rows)

    consume(produce())


example_large_xcom()
