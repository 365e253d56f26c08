"""Large XComs go to object storage: only a path is stored in the metadata DB.

[core] xcom_backend is this project's xcom_backend.ObjectStorageXComBackend: values of 64 KiB or
more are written under [common.io] xcom_objectstorage_path (file:///... locally, s3://... in
production). `produce` returns 5,000 rows (about 300 KiB); `consume` checks that every row came
back exactly. If the path is unset or relative, `produce` fails and names the setting: a large
value is never written to a place another process cannot read.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from {{ cookiecutter.project_slug }}.dag_defaults import default_args

ROWS = 5_000


def sample_rows() -> list[dict]:
    return [{"id": number, "payload": f"row {number:05d} " + "x" * 32} for number in range(ROWS)]


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
        return sample_rows()

    @task
    def consume(rows: list[dict]) -> int:
        if rows != sample_rows():
            raise ValueError(f"the {ROWS} rows did not come back from object storage as produced: got {rows!r:.200}")
        print(f"{len(rows)} rows came back exactly")
        return len(rows)

    consume(produce())


example_large_xcom()
