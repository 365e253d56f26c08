"""Hybrid executors: light tasks run on Celery, the default; one heavy task gets its own pod.

`executor="KubernetesExecutor"` routes a single task. It must name an executor listed in
[core] executor, or the file fails to parse (tests/test_dag_policy.py checks this).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from {{ cookiecutter.project_slug }}.dag_defaults import daily_intervals, default_args
from {{ cookiecutter.project_slug }}.sample_orders import generate_orders, summarize


@dag(
    schedule=daily_intervals(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    tags=["example", "kubernetes"],
    doc_md=__doc__,
)
def example_kubernetes_offload():
    @task
    def extract(data_interval_start=None, data_interval_end=None) -> list[dict]:
        return generate_orders(data_interval_start, data_interval_end, 1_000)

    @task(executor="KubernetesExecutor")
    def crunch(orders: list[dict]) -> dict:
        return summarize(orders)

    @task
    def publish(summary: dict) -> None:
        print(f"{summary['orders']} orders, revenue {summary['revenue']}")

    publish(crunch(extract()))


example_kubernetes_offload()
