"""Safe TaskFlow pattern: parsing this file only builds the DAG.

Nothing at module level touches the network, the database or a slow import, because the
dag-processor re-runs this file every 30 seconds. Configuration is read inside the tasks,
when they run on a worker, and the logic lives in plugins/ where tests can reach it.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Variable, dag, task

from {{ cookiecutter.project_slug }}.dag_defaults import daily_intervals, default_args
from {{ cookiecutter.project_slug }}.sample_orders import generate_orders, summarize


@dag(
    schedule=daily_intervals(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    tags=["example", "taskflow"],
    doc_md=__doc__,
)
def example_safe_taskflow():
    @task
    def extract(data_interval_start=None, data_interval_end=None) -> list[dict]:
        batch_size = int(Variable.get("example_batch_size", default="100"))
        return generate_orders(data_interval_start, data_interval_end, batch_size)

    @task
    def report(orders: list[dict]) -> dict:
        summary = summarize(orders)
        print(f"{summary['orders']} orders, revenue {summary['revenue']}")
        return summary

    report(extract())


example_safe_taskflow()
