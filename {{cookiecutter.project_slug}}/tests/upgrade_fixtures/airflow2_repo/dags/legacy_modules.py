"""Operators reached through their Airflow 1.10 modules: ruff's fix for this never finishes."""

from datetime import datetime

from airflow import DAG
from airflow.operators import bash_operator

with DAG(dag_id="legacy_modules", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
    bash_operator.BashOperator(task_id="hello", bash_command="echo hello")
