"""Month-end close: SLAs, execution_date and templates that need a logical date."""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator


def notify_sla_miss(dag, task_list, blocking_task_list, slas, blocking_tis):
    print("SLA missed:", task_list)


def close_books(ds, execution_date, **context):
    print("closing", ds, execution_date, context["next_ds"])


with DAG(
    dag_id="finance_close",
    schedule="@monthly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    sla_miss_callback=notify_sla_miss,
    default_args={"owner": "finance", "retries": 1, "sla": timedelta(hours=2)},
    tags=["finance"],
) as dag:
    export = BashOperator(
        task_id="export_ledger",
        bash_command="export_ledger --day {{ ds }} --until {{ next_ds_nodash }}",
        sla=timedelta(hours=1),
    )
    close = PythonOperator(task_id="close_books", python_callable=close_books)
    archive = BashOperator(
        task_id="archive",
        bash_command="archive --day {{ ds | default(dag_run.run_after | ds) }}",
    )
    export >> close >> archive
