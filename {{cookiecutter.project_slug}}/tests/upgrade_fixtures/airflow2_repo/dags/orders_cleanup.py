"""Purges old runs straight from the metadata DB, as many Airflow 2 teams did; its start_date moves on every parse."""

from datetime import datetime, timedelta

from airflow import DAG, settings
from airflow.models import DagRun, TaskInstance
from airflow.operators.python import PythonOperator
from airflow.utils.session import create_session


def purge_old_runs():
    cutoff = datetime.utcnow() - timedelta(days=30)
    with create_session() as session:
        session.query(TaskInstance).filter(TaskInstance.start_date < cutoff).delete()


def count_runs():
    session = settings.Session()
    print(session.query(DagRun).count())


with DAG(
    dag_id="orders_cleanup",
    schedule="@weekly",
    start_date=datetime.now() - timedelta(days=7),
    catchup=False,
    tags=["maintenance"],
) as dag:
    PythonOperator(task_id="purge", python_callable=purge_old_runs) >> PythonOperator(
        task_id="count", python_callable=count_runs
    )
