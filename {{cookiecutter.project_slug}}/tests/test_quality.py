"""Quality checks: what blocks, what only warns, and what must fail whatever the severity."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.common.sql.operators.sql import SQLTableCheckOperator
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException, AirflowSkipException

from {{ cookiecutter.project_slug }}.quality import (
    QualityCheck,
    WarningTableCheckOperator,
    checks_by_severity,
    partition_clause,
    quality_gate,
)
from {{ cookiecutter.project_slug }}.run_dates import Window

CHECKS = [
    QualityCheck("has_rows", "COUNT(*) > 0"),
    QualityCheck("few_nulls", "COUNT(*) FILTER (WHERE x IS NULL) < 10", severity="warning"),
]
DAY = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))


class ScriptedHook(DbApiHook):
    """A database hook whose query answers are given: what SQLTableCheckOperator reads back."""

    conn_name_attr = "scripted_conn_id"

    def __init__(self, records: list[tuple[str, int]]) -> None:
        super().__init__()
        self.records = records
        self.queries: list[str] = []

    def get_records(self, sql, parameters=None):
        self.queries.append(sql)
        return self.records


def warning_operator(checks=CHECKS, **kwargs) -> WarningTableCheckOperator:
    return WarningTableCheckOperator(
        task_id="warning_checks", table="t", conn_id="warehouse", checks=checks_by_severity(checks, "warning"), **kwargs
    )


def use_hook(monkeypatch, hook) -> None:
    monkeypatch.setattr(WarningTableCheckOperator, "get_db_hook", lambda self: hook)


def test_checks_split_by_severity():
    assert checks_by_severity(CHECKS, "error") == {"has_rows": {"check_statement": "COUNT(*) > 0"}}
    assert set(checks_by_severity(CHECKS, "warning")) == {"few_nulls"}


def test_duplicate_check_names_are_refused():
    with pytest.raises(ValueError, match="has_rows"):
        checks_by_severity([*CHECKS, QualityCheck("has_rows", "TRUE")], "error")


def test_a_warning_check_that_ran_and_failed_is_logged_and_passes(monkeypatch, capsys):
    hook = ScriptedHook([("few_nulls", 0)])
    use_hook(monkeypatch, hook)

    warning_operator().execute(context={})  # must not raise

    assert "few_nulls" in hook.queries[0]
    logged = capsys.readouterr().out  # Airflow's task logger writes through structlog to stdout
    assert "Quality warning on t" in logged and "few_nulls" in logged


def test_a_warning_check_that_passed_logs_no_warning(monkeypatch, capsys):
    use_hook(monkeypatch, ScriptedHook([("few_nulls", 1)]))

    warning_operator().execute(context={})

    assert "Quality warning" not in capsys.readouterr().out


def test_a_missing_connection_fails_the_warning_task(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE", raising=False)

    with pytest.raises(AirflowNotFoundException, match="warehouse"):
        warning_operator().execute(context={})


def test_a_connection_of_a_type_without_a_sql_hook_fails_the_warning_task(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "no_such_database", "host": "h"}))

    with pytest.raises(AirflowException) as failure:
        warning_operator().execute(context={})
    assert "Quality warning" not in str(failure.value)


def test_sql_the_database_rejects_fails_the_warning_task(monkeypatch):
    class RejectingHook(ScriptedHook):
        def get_records(self, sql, parameters=None):
            raise RuntimeError('column "x" does not exist')

    use_hook(monkeypatch, RejectingHook([]))

    with pytest.raises(RuntimeError, match="does not exist"):
        warning_operator().execute(context={})


def test_no_warning_checks_skip_the_warning_task_before_any_sql(monkeypatch):
    hook = ScriptedHook([])
    use_hook(monkeypatch, hook)

    with pytest.raises(AirflowSkipException, match="no warning checks"):
        warning_operator(checks=[QualityCheck("has_rows", "COUNT(*) > 0")]).execute(context={})
    assert hook.queries == []


def test_the_gate_has_a_blocking_and_a_warning_task_on_the_same_partition():
    blocking, warning = quality_gate(table="orders", checks=CHECKS, conn_id="warehouse", partition_clause="d = 1")

    assert type(blocking) is SQLTableCheckOperator and blocking.retry_on_failure is False
    assert set(blocking.checks) == {"has_rows"} and set(warning.checks) == {"few_nulls"}
    assert "WHERE d = 1" in blocking.sql and "WHERE d = 1" in warning.sql


def test_a_gate_without_error_checks_is_refused():
    with pytest.raises(ValueError, match="at least one check with severity 'error'"):
        quality_gate(table="orders", checks=CHECKS[1:], conn_id="warehouse")


def test_partition_clause_selects_each_window():
    second = Window(DAY.end, datetime(2026, 1, 3, tzinfo=UTC))

    assert partition_clause("placed_at", [DAY]) == (
        "((placed_at >= '2026-01-01T00:00:00+00:00' AND placed_at < '2026-01-02T00:00:00+00:00'))"
    )
    assert partition_clause("placed_at", [DAY, second]).count(" OR ") == 1


@pytest.mark.parametrize("column", ["placed_at; drop table x", "Placed"])
def test_partition_clause_refuses_a_column_that_is_not_a_plain_identifier(column):
    with pytest.raises(ValueError, match="identifier"):
        partition_clause(column, [DAY])
