"""Daily sales extract: an Airflow 2 DAG whose only problems ruff can fix."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.dummy import DummyOperator
from airflow.operators.python import PythonOperator


def summarise(ti):
    print("rows extracted:", ti.xcom_pull(task_ids="extract"))


with DAG(
    dag_id="sales_daily",
    schedule_interval="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"owner": "analytics", "retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["sales"],
) as dag:
    start = DummyOperator(task_id="start")
    extract = BashOperator(task_id="extract", bash_command="echo 42")
    report = PythonOperator(task_id="summarise", python_callable=summarise)
    start >> extract >> report
