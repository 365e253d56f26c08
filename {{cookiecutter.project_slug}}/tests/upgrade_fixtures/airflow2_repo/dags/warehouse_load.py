"""Warehouse load: pools and connections the new project must declare."""

from datetime import datetime

from airflow import DAG
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.http.operators.http import HttpOperator

with DAG(
    dag_id="warehouse_load",
    schedule="@hourly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"owner": "data-eng", "retries": 2, "pool": "etl_heavy"},
    tags=["warehouse"],
) as dag:
    fetch = HttpOperator(task_id="fetch", http_conn_id="crm_api", endpoint="/export", pool="external_api")
    load = SQLExecuteQueryOperator(task_id="load", conn_id="legacy_dwh", sql="CALL load_crm()", pool="dwh_writes")
    fetch >> load
