"""Safe TaskFlow pattern: parsing this file only builds the DAG.

Nothing at module level touches the network, the database or a slow import, because the
dag-processor re-runs this file every 30 seconds. Configuration is read inside the tasks,
when they run on a worker, and the logic lives in plugins/ where tests can reach it.

`extract` covers the run's window: its data interval or, for a run without a logical date, the
last whole UTC day before it was due. The optional Variable `example_batch_size` sets how many
orders it makes (default 100); a value that is not a whole number fails the task, naming it.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Variable, dag, task

from {{ cookiecutter.project_slug }}.dag_defaults import daily_intervals, default_args
from {{ cookiecutter.project_slug }}.run_dates import data_window
from {{ cookiecutter.project_slug }}.sample_orders import BATCH_SIZE_VARIABLE, batch_size, generate_orders, summarize


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
    def extract(dag_run=None) -> list[dict]:
        count = batch_size(Variable.get(BATCH_SIZE_VARIABLE, default="100"))
        return generate_orders(*data_window(dag_run), count)

    @task
    def report(orders: list[dict]) -> dict:
        summary = summarize(orders)
        print(f"{summary['orders']} orders, revenue {summary['revenue']}")
        return summary

    report(extract())


example_safe_taskflow()
