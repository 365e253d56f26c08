"""Partner feeds: a SubDAG and an airflow.contrib hook, both gone in Airflow 3."""

from datetime import datetime

from airflow import DAG
from airflow.contrib.hooks.ssh_hook import SSHHook
from airflow.operators.dummy_operator import DummyOperator
from airflow.operators.subdag import SubDagOperator


def partner_subdag(parent_dag_id, child_id, args):
    with DAG(dag_id=f"{parent_dag_id}.{child_id}", default_args=args, schedule_interval=None) as subdag:
        for partner in ("acme", "globex"):
            DummyOperator(task_id=f"fetch_{partner}")
    return subdag


def remote_host():
    return SSHHook(ssh_conn_id="partner_sftp").remote_host


with DAG(
    dag_id="partner_feeds",
    schedule_interval="0 6 * * *",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["partners"],
) as dag:
    SubDagOperator(task_id="fetch", subdag=partner_subdag("partner_feeds", "fetch", dag.default_args))
