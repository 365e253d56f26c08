"""Declarative data quality checks on the common-sql check operators.

Each check is one SQL boolean over a table. Severity decides what a failure does:
"error" checks run in SQLTableCheckOperator, which fails the task and stops everything
downstream; "warning" checks run in WarningTableCheckOperator, which logs the failure and
succeeds, so a suspicious but usable batch still ships. Failed checks are not retried: the
data will not change between tries.

Only a check that ran and came out false is a warning. A connection that is missing or of the
wrong type, or SQL the database rejects, fails the warning task like any other: a gate that
cannot look is not a gate that passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from airflow.providers.common.sql.operators.sql import SQLTableCheckOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from .incremental import checked_identifier
from .run_dates import Window

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class QualityCheck:
    name: str
    check_statement: str
    severity: Severity = "error"


class QualityCheckFailed(AirflowException):
    """Checks that ran and came out false."""


class WarningTableCheckOperator(SQLTableCheckOperator):
    """SQLTableCheckOperator whose failed checks are logged as warnings instead of failing the task.

    With no checks at all it skips: there is nothing to run, and an empty check list would
    otherwise become invalid SQL.
    """

    def execute(self, context: Any) -> None:
        if not self.checks:
            raise AirflowSkipException(f"no warning checks are declared for {self.table}")
        try:
            super().execute(context)
        except QualityCheckFailed as failure:
            self.log.warning("Quality warning on %s (does not block the pipeline): %s", self.table, failure)

    def _raise_exception(self, exception_string: str) -> NoReturn:
        # The operator calls this only for results it evaluated; every other error propagates.
        raise QualityCheckFailed(exception_string)


def checks_by_severity(checks: Sequence[QualityCheck], severity: Severity) -> dict[str, dict[str, str]]:
    """The `checks` argument of SQLTableCheckOperator for the checks of one severity."""
    names = [check.name for check in checks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"quality check names must be unique: {duplicates}")
    return {check.name: {"check_statement": check.check_statement} for check in checks if check.severity == severity}


def partition_clause(column: str, windows: Sequence[Window]) -> str:
    """A WHERE condition selecting the rows whose ``column`` falls in any of the windows."""
    if not windows:
        raise ValueError("a partition clause needs at least one window")
    column = checked_identifier(column)
    # The bounds come from datetime objects, so their ISO form holds no quote.
    ranges = [f"({column} >= '{start.isoformat()}' AND {column} < '{end.isoformat()}')" for start, end in windows]
    return f"({' OR '.join(ranges)})"


def pulled_partition_clause(task_id: str) -> str:
    """A template rendering the partition clause that task ``task_id`` returned, for quality_gate()."""
    return "{{ ti.xcom_pull(task_ids='" + task_id + "') }}"


def quality_gate(
    *, table: str, checks: Sequence[QualityCheck], conn_id: str, partition_clause: str | None = None, **task_kwargs
) -> tuple[SQLTableCheckOperator, WarningTableCheckOperator]:
    """The blocking and the non-blocking check task for one table; wire the blocking one upstream of publishing.

    A gate needs at least one error check. Without warning checks, the warning task skips.
    """
    if not checks_by_severity(checks, "error"):
        raise ValueError(f"a quality gate on {table} needs at least one check with severity 'error'")
    common = {"table": table, "conn_id": conn_id, "partition_clause": partition_clause, **task_kwargs}
    error_checks = SQLTableCheckOperator(
        task_id="error_checks", checks=checks_by_severity(checks, "error"), retry_on_failure=False, **common
    )
    warning_checks = WarningTableCheckOperator(
        task_id="warning_checks", checks=checks_by_severity(checks, "warning"), **common
    )
    return error_checks, warning_checks
