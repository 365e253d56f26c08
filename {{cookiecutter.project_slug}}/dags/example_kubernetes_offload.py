"""Hybrid executors: light tasks run on Celery, the default; one heavy task gets its own pod.

`executor="KubernetesExecutor"` routes a single task. It must name an executor listed in
[core] executor, or the file fails to parse (tests/test_dag_policy.py checks this).
Its pod starts from deploy/k8s/pod_template.yaml; `executor_config` asks for more CPU and
memory than the template gives every task (tests/test_task_pods.py checks the merge).
"""

from __future__ import annotations

import pendulum
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from airflow.sdk import dag, task

from {{ cookiecutter.project_slug }}.dag_defaults import daily_intervals, default_args
from {{ cookiecutter.project_slug }}.run_dates import data_window
from {{ cookiecutter.project_slug }}.sample_orders import generate_orders, summarize

# Merged into the template's first container: these resources replace the template's, the
# rest (security context, volumes, environment) is kept. Importing the Kubernetes client
# through the provider lets the dag-processor import it once ([dag_processor]
# parsing_pre_import_modules) instead of on every parse.
HEAVY_POD = PodGenerator.deserialize_model_dict(
    {
        "spec": {
            "containers": [
                {
                    "name": "base",
                    "resources": {
                        "requests": {"cpu": "2", "memory": "4Gi"},
                        "limits": {"cpu": "2", "memory": "4Gi"},
                    },
                }
            ]
        }
    }
)


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
    def extract(dag_run=None) -> list[dict]:
        return generate_orders(*data_window(dag_run), 1_000)

    @task(executor="KubernetesExecutor", executor_config={"pod_override": HEAVY_POD})
    def crunch(orders: list[dict]) -> dict:
        return summarize(orders)

    @task
    def publish(summary: dict) -> None:
        print(f"{summary['orders']} orders, revenue {summary['revenue']}")

    publish(crunch(extract()))


example_kubernetes_offload()
