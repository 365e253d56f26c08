"""Declarative data quality checks on the common-sql check operators.

Each check is one SQL boolean over a table. Severity decides what a failure does:
"error" checks run in SQLTableCheckOperator, which fails the task and stops everything
downstream; "warning" checks run in WarningTableCheckOperator, which logs the failure and
succeeds, so a suspicious but usable batch still ships. Failed checks are not retried: the
data will not change between tries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from airflow.providers.common.sql.operators.sql import SQLTableCheckOperator
from airflow.sdk.exceptions import AirflowException

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class QualityCheck:
    name: str
    check_statement: str
    severity: Severity = "error"


class WarningTableCheckOperator(SQLTableCheckOperator):
    """SQLTableCheckOperator whose failures are logged as warnings instead of failing the task."""

    def execute(self, context: Any) -> None:
        try:
            super().execute(context)
        except AirflowException as failure:
            self.log.warning("Quality warning on %s (does not block the pipeline): %s", self.table, failure)


def checks_by_severity(checks: Sequence[QualityCheck], severity: Severity) -> dict[str, dict[str, str]]:
    """The `checks` argument of SQLTableCheckOperator for the checks of one severity."""
    names = [check.name for check in checks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"quality check names must be unique: {duplicates}")
    return {check.name: {"check_statement": check.check_statement} for check in checks if check.severity == severity}


def quality_gate(
    *, table: str, checks: Sequence[QualityCheck], conn_id: str, partition_clause: str | None = None, **task_kwargs
) -> tuple[SQLTableCheckOperator, WarningTableCheckOperator]:
    """The blocking and the non-blocking check task for one table; wire the blocking one upstream of publishing."""
    common = {"table": table, "conn_id": conn_id, "partition_clause": partition_clause, **task_kwargs}
    error_checks = SQLTableCheckOperator(
        task_id="error_checks", checks=checks_by_severity(checks, "error"), retry_on_failure=False, **common
    )
    warning_checks = WarningTableCheckOperator(
        task_id="warning_checks", checks=checks_by_severity(checks, "warning"), **common
    )
    return error_checks, warning_checks
