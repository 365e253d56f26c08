"""Pull a day of orders from an outside API that is slow, rate-limited and sometimes down.

The day is the run's logical date or, for a run triggered without one, the day it was due to
run (`dag_run.run_after`): the same day either way for a run triggered now.

`fetch_orders` retries 429s, 5xx and dropped connections with jittered backoff, and shares a
circuit breaker with every task using the `example_api` connection: once the API has failed
several tries in a row, tasks fail fast instead of piling onto it until a cool-down passes.
It runs in the `external_api` pool, so at most that pool's slots call outside APIs at once.

The `example_api` connection names the API, e.g. `AIRFLOW_CONN_EXAMPLE_API=https://api.example.com`
(https because the URI says so, with the connection's login, headers and TLS settings); the task
fails naming that variable if the connection is missing. The API answers
`GET /orders?date=YYYY-MM-DD` with `{"records": [...]}`. An empty answer (no body, `{}` or `[]`)
skips the run's downstream tasks; one without "records" fails.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from {{ cookiecutter.project_slug }}.dag_defaults import default_args
from {{ cookiecutter.project_slug }}.resilient_http import ResilientHttpOperator, json_has_keys
from {{ cookiecutter.project_slug }}.run_dates import RUN_DATE_TEMPLATE


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    tags=["example", "api"],
    doc_md=__doc__,
)
def example_api_ingest():
    orders = ResilientHttpOperator(
        task_id="fetch_orders",
        http_conn_id="example_api",
        endpoint="orders",
        data={"date": RUN_DATE_TEMPLATE},
        headers={"Accept": "application/json"},
        response_check=json_has_keys("records"),
        pool="external_api",
    )

    @task
    def count_orders(payload: dict) -> int:
        print(f"{len(payload['records'])} orders received")
        return len(payload["records"])

    count_orders(orders.output)


example_api_ingest()
