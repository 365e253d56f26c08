"""Idempotent incremental load: replace one window of rows, prove they arrived, then announce them.

The load deletes and inserts the window's rows in one transaction, so re-running any window is
safe. The window is the run's data interval. A run without a logical date (triggered with the
date cleared) has no interval: it loads the last whole UTC day before it was due, the window a
scheduled run at that midnight loads (run_dates.data_window), so a re-run stays idempotent.

The validation is common-sql's SQLCheckOperator, which fails when the count it reads is zero:
an empty partition is an incident, not a success. Only then does `announce` emit an event of
the `example_orders` asset carrying the window (start and end, ISO 8601, in the event's extra);
example_quality_gate is scheduled on it. Downstream reports depend on this load, so it is tagged
critical: a failure pages as well as posting.

Needs the `warehouse` connection (Postgres). Every task checks for it first and, if it is
missing, fails naming AIRFLOW_CONN_WAREHOUSE.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.sql.operators.sql import SQLCheckOperator, SQLExecuteQueryOperator
from airflow.sdk import dag, task

from {{ cookiecutter.project_slug }}.connections import requires_connections
from {{ cookiecutter.project_slug }}.dag_defaults import daily_intervals, default_args
from {{ cookiecutter.project_slug }}.incremental import replace_partition
from {{ cookiecutter.project_slug }}.run_dates import data_window, window_templates
from {{ cookiecutter.project_slug }}.sample_orders import EXAMPLE_ORDERS, generate_orders

WAREHOUSE_CONN_ID = "warehouse"
TABLE = "example_orders"


@dag(
    schedule=daily_intervals(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(pool="warehouse", pre_execute=requires_connections(WAREHOUSE_CONN_ID)),
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
    def load_partition(dag_run=None) -> dict[str, str]:
        # Imported here: the postgres provider is a slow import the dag-processor need not pay.
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        window = data_window(dag_run)
        orders = generate_orders(window.start, window.end, count=100)
        rows = [(order["order_id"], pendulum.from_timestamp(order["placed_at"]), order["amount"]) for order in orders]
        connection = PostgresHook(postgres_conn_id=WAREHOUSE_CONN_ID).get_conn()
        try:
            loaded = replace_partition(
                connection,
                table=TABLE,
                time_column="placed_at",
                columns=["order_id", "placed_at", "amount"],
                rows=rows,
                start=window.start,
                end=window.end,
            )
        finally:
            connection.close()
        print(f"{TABLE}: replaced [{window.start}, {window.end}) with {loaded} orders")
        return window.as_extra()

    window = load_partition()
    start, end = window_templates("load_partition")
    validate_row_count = SQLCheckOperator(
        task_id="validate_row_count",
        conn_id=WAREHOUSE_CONN_ID,
        retry_on_failure=False,
        # The window the load replaced, from its XCom: SQLCheckOperator templates `sql` but not `parameters`.
        sql=f"SELECT COUNT(*) FROM {TABLE} WHERE placed_at >= '{start}' AND placed_at < '{end}'",
    )

    @task(outlets=[EXAMPLE_ORDERS])
    def announce(window: dict[str, str], outlet_events=None) -> None:
        """Tell the asset's consumers which window now holds validated rows."""
        outlet_events[EXAMPLE_ORDERS].extra = window

    create_table >> window >> validate_row_count >> announce(window)


example_incremental_load()
