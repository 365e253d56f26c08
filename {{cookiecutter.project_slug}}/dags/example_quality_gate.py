"""Data quality gate on each window example_incremental_load announces: error checks stop the
pipeline, warning checks only log.

The DAG is scheduled on the `example_orders` asset, so it runs once the load has replaced a
window and counted its rows. An asset-triggered run has no logical date and no data interval:
the window comes from the triggering event's extra. Triggered by hand (with or without a date),
the gate checks the latest window the load announced, and skips if it never announced one.

The checks are declared below and run by common-sql's SQLTableCheckOperator (blocking) and
quality.WarningTableCheckOperator (logged only). `publish` waits for the blocking checks only.
Needs the `warehouse` connection, as the load does.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from {{ cookiecutter.project_slug }}.connections import requires_connections
from {{ cookiecutter.project_slug }}.dag_defaults import default_args
from {{ cookiecutter.project_slug }}.quality import QualityCheck, partition_clause, pulled_partition_clause, quality_gate
from {{ cookiecutter.project_slug }}.run_dates import announced_windows
from {{ cookiecutter.project_slug }}.sample_orders import EXAMPLE_ORDERS

WAREHOUSE_CONN_ID = "warehouse"
CHECKS = [
    QualityCheck("has_rows", "COUNT(*) > 0"),
    QualityCheck("no_negative_amounts", "MIN(amount) >= 0"),
    QualityCheck("unique_order_ids", "COUNT(DISTINCT order_id) = COUNT(*)"),
    QualityCheck("no_huge_orders", "MAX(amount) < 10000", severity="warning"),
    QualityCheck("enough_orders", "COUNT(*) >= 50", severity="warning"),
]


@dag(
    schedule=[EXAMPLE_ORDERS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(pool="warehouse", pre_execute=requires_connections(WAREHOUSE_CONN_ID)),
    tags=["example", "quality"],
    doc_md=__doc__,
)
def example_quality_gate():
    @task(inlets=[EXAMPLE_ORDERS])
    def loaded_partition(triggering_asset_events=None, inlet_events=None) -> str:
        """The WHERE condition for the window(s) the load announced."""
        windows = announced_windows(EXAMPLE_ORDERS, triggering_asset_events, inlet_events)
        if not windows:
            raise AirflowSkipException("example_incremental_load has announced no window yet: nothing to check")
        print(f"checking {[window.as_extra() for window in windows]}")
        return partition_clause("placed_at", windows)

    # The warning checks run beside the gate; their findings are logged and never block.
    blocking_checks, warning_checks = quality_gate(
        table="example_orders",
        checks=CHECKS,
        conn_id=WAREHOUSE_CONN_ID,
        partition_clause=pulled_partition_clause("loaded_partition"),
    )

    @task
    def publish() -> None:
        print("example_orders passed its blocking checks; publishing")

    loaded_partition() >> [blocking_checks, warning_checks]
    blocking_checks >> publish()


example_quality_gate()
