"""Dynamic task mapping with branching: fan out over partitions only known at run time.

`process` runs once per hourly partition, at most 4 at a time (`max_active_tis_per_dag`)
and inside the `heavy_compute` pool. A branch then publishes or reports that there was
nothing to publish; the join runs when either path succeeded, and the aggregate runs
whatever happened upstream, so the notification group always reports.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import TriggerRule, dag, task, task_group

from {{ cookiecutter.project_slug }}.batch_processing import hourly_partitions, process_partition, summarize
from {{ cookiecutter.project_slug }}.dag_defaults import daily_intervals, default_args


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
    def list_partitions(data_interval_start=None, data_interval_end=None) -> list[str]:
        return hourly_partitions(data_interval_start, data_interval_end)

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
    def aggregate(results: list[dict | None]) -> dict:
        return summarize(results)

    @task_group
    def notify(summary: dict):
        @task
        def log_summary(summary: dict) -> None:
            print(f"{summary['succeeded']}/{summary['partitions']} partitions, {summary['rows']} rows")

        @task
        def check_completeness(summary: dict) -> bool:
            return summary["succeeded"] == summary["partitions"]

        log_summary(summary)
        check_completeness(summary)

    results = process.expand(partition=list_partitions())
    nothing_to_publish = EmptyOperator(task_id="nothing_to_publish")
    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    choose_path(results) >> [publish(results), nothing_to_publish] >> join
    summary = aggregate(results)
    join >> summary
    notify(summary)


example_dynamic_mapping()
