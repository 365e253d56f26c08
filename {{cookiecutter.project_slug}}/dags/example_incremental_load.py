"""Idempotent incremental load: replace one data interval's rows, then prove they arrived.

The load deletes and inserts the interval's partition in one transaction, so re-running
any interval is safe. Downstream reports depend on it, so it is tagged critical: a failure
pages as well as posting. The validation is common-sql's SQLCheckOperator, which fails when the
count it reads is zero: an empty partition is an incident, not a success.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.sql.operators.sql import SQLCheckOperator, SQLExecuteQueryOperator
from airflow.sdk import dag, task

from {{ cookiecutter.project_slug }}.dag_defaults import daily_intervals, default_args
from {{ cookiecutter.project_slug }}.incremental import replace_partition
from {{ cookiecutter.project_slug }}.sample_orders import generate_orders

WAREHOUSE_CONN_ID = "warehouse"
TABLE = "example_orders"


@dag(
    schedule=daily_intervals(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(pool="warehouse"),
    # "critical": a failure pages on-call as well as posting to chat (see alerting.py).
    tags=["example", "warehouse", "critical"],
    doc_md=__doc__,
)
def example_incremental_load():
    create_table = SQLExecuteQueryOperator(
        task_id="create_table",
        conn_id=WAREHOUSE_CONN_ID,
        sql=f"""
            CREATE TABLE IF NOT EXISTS {TABLE} (
                order_id text PRIMARY KEY,
                placed_at timestamptz NOT NULL,
                amount numeric(12, 2) NOT NULL
            )
        """,
    )

    @task
    def load_partition(data_interval_start=None, data_interval_end=None) -> int:
        # Imported here: the postgres provider is a slow import the dag-processor need not pay.
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        orders = generate_orders(data_interval_start, data_interval_end, count=100)
        rows = [(order["order_id"], pendulum.from_timestamp(order["placed_at"]), order["amount"]) for order in orders]
        connection = PostgresHook(postgres_conn_id=WAREHOUSE_CONN_ID).get_conn()
        try:
            return replace_partition(
                connection,
                table=TABLE,
                time_column="placed_at",
                columns=["order_id", "placed_at", "amount"],
                rows=rows,
                start=data_interval_start,
                end=data_interval_end,
            )
        finally:
            connection.close()

    validate_row_count = SQLCheckOperator(
        task_id="validate_row_count",
        conn_id=WAREHOUSE_CONN_ID,
        retry_on_failure=False,
        # The interval is rendered into the SQL: SQLCheckOperator templates `sql` but not `parameters`.
        sql=(
            f"SELECT COUNT(*) FROM {TABLE} "
            {% raw %}"WHERE placed_at >= '{{ data_interval_start }}' AND placed_at < '{{ data_interval_end }}'"{% endraw %}
        ),
    )

    create_table >> load_partition() >> validate_row_count


example_incremental_load()
