"""Dynamic task mapping with branching: fan out over partitions only known at run time.

`process` runs once per hourly partition of the run's window (its data interval or, for a run
without a logical date, the last whole UTC day before it was due), at most 4 at a time
(`max_active_tis_per_dag`) and inside the `heavy_compute` pool. A branch then publishes or
reports that there was nothing to publish; the join runs when either path succeeded.

The aggregate runs whatever happened upstream, so the notification group always reports. Its
`check_completeness` then fails when any partition failed: Airflow sets a run's state from its
leaf tasks, and this is the leaf that knows, so a failed partition fails the run.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import TriggerRule, dag, task, task_group

from {{ cookiecutter.project_slug }}.batch_processing import (
    hourly_partitions,
    process_partition,
    require_complete,
    summarize,
)
from {{ cookiecutter.project_slug }}.dag_defaults import daily_intervals, default_args
from {{ cookiecutter.project_slug }}.run_dates import data_window


@dag(
    schedule=daily_intervals(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    tags=["example", "mapping"],
    doc_md=__doc__,
)
def example_dynamic_mapping():
    @task
    def list_partitions(dag_run=None) -> list[str]:
        return hourly_partitions(*data_window(dag_run))

    @task(pool="heavy_compute", max_active_tis_per_dag=4)
    def process(partition: str) -> dict:
        return process_partition(partition)

    @task.branch
    def choose_path(results: list[dict]) -> str:
        return "publish" if any(result["rows"] for result in results) else "nothing_to_publish"

    @task
    def publish(results: list[dict]) -> int:
        return sum(result["rows"] for result in results)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def aggregate(results: list[dict | None], partitions: list[str]) -> dict:
        return summarize(results, partitions)

    @task_group
    def notify(summary: dict):
        @task
        def log_summary(summary: dict) -> None:
            print(f"{summary['succeeded']}/{summary['partitions']} partitions, {summary['rows']} rows")

        @task
        def check_completeness(summary: dict) -> None:
            require_complete(summary)

        log_summary(summary)
        check_completeness(summary)

    partitions = list_partitions()
    results = process.expand(partition=partitions)
    nothing_to_publish = EmptyOperator(task_id="nothing_to_publish")
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    choose_path(results) >> [publish(results), nothing_to_publish] >> join
    summary = aggregate(results, partitions)
    join >> summary
    notify(summary)


example_dynamic_mapping()
