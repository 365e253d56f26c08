"""Data quality gate: error checks stop the pipeline, warning checks only log.

The checks are declared below and run by common-sql's SQLTableCheckOperator on the
interval that example_incremental_load wrote. `publish` waits for the blocking checks only.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from {{ cookiecutter.project_slug }}.dag_defaults import daily_intervals, default_args
from {{ cookiecutter.project_slug }}.quality import QualityCheck, quality_gate

CHECKS = [
    QualityCheck("has_rows", "COUNT(*) > 0"),
    QualityCheck("no_negative_amounts", "MIN(amount) >= 0"),
    QualityCheck("unique_order_ids", "COUNT(DISTINCT order_id) = COUNT(*)"),
    QualityCheck("no_huge_orders", "MAX(amount) < 10000", severity="warning"),
    QualityCheck("enough_orders", "COUNT(*) >= 50", severity="warning"),
]


@dag(
    schedule=daily_intervals(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(pool="warehouse"),
    tags=["example", "quality"],
    doc_md=__doc__,
)
def example_quality_gate():
    # The warning checks run beside the gate; their findings are logged and never block.
    blocking_checks, _warning_checks = quality_gate(
        table="example_orders",
        checks=CHECKS,
        conn_id="warehouse",
        partition_clause={% raw %}"placed_at >= '{{ data_interval_start }}' AND placed_at < '{{ data_interval_end }}'"{% endraw %},
    )

    @task
    def publish() -> None:
        print("example_orders passed its blocking checks; publishing")

    blocking_checks >> publish()


example_quality_gate()
