"""Classic operators, already on the Airflow 3 provider paths: nothing to report."""

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(
    dag_id="clean_classic",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"owner": "analytics", "retries": 1},
    tags=["analytics"],
):
    EmptyOperator(task_id="start") >> BashOperator(
        task_id="stamp", bash_command="echo {{ ds | default(dag_run.run_after | ds) }}"
    )
