import pytest
from airflow.providers.common.sql.operators.sql import SQLTableCheckOperator
from airflow.sdk.exceptions import AirflowFailException

from {{ cookiecutter.project_slug }}.quality import QualityCheck, WarningTableCheckOperator, checks_by_severity

CHECKS = [
    QualityCheck("has_rows", "COUNT(*) > 0"),
    QualityCheck("few_nulls", "COUNT(*) FILTER (WHERE x IS NULL) < 10", severity="warning"),
]


def test_checks_split_by_severity():
    assert checks_by_severity(CHECKS, "error") == {"has_rows": {"check_statement": "COUNT(*) > 0"}}
    assert set(checks_by_severity(CHECKS, "warning")) == {"few_nulls"}


def test_duplicate_check_names_are_refused():
    with pytest.raises(ValueError, match="has_rows"):
        checks_by_severity([*CHECKS, QualityCheck("has_rows", "TRUE")], "error")


def test_warning_checks_log_instead_of_failing(monkeypatch, capsys):
    def failing_check(self, context):
        raise AirflowFailException("Test failed.\nResults:\nfew_nulls")

    monkeypatch.setattr(SQLTableCheckOperator, "execute", failing_check)
    operator = WarningTableCheckOperator(
        task_id="warning_checks", table="t", conn_id="warehouse", checks=checks_by_severity(CHECKS, "warning")
    )
    operator.execute(context={})  # must not raise
    logged = capsys.readouterr().out  # Airflow's task logger writes through structlog to stdout
    assert "Quality warning on t" in logged and "few_nulls" in logged
