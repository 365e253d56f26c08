from datetime import UTC, datetime

import pytest
from airflow.sdk.exceptions import AirflowFailException

from {{ cookiecutter.project_slug }}.batch_processing import (
    hourly_partitions,
    process_partition,
    require_complete,
    summarize,
)


def test_a_day_has_24_hourly_partitions():
    keys = hourly_partitions(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    assert len(keys) == 24 and keys[0] == "2026-01-01T00" and keys[-1] == "2026-01-01T23"


def test_an_empty_interval_has_no_partitions():
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert hourly_partitions(moment, moment) == []


def test_summary_counts_only_partitions_that_produced_results():
    results = [process_partition("2026-01-01T00"), None, process_partition("2026-01-01T01")]
    summary = summarize(results, ["2026-01-01T00", "2026-01-01T01", "2026-01-01T02"])
    assert summary["partitions"] == 3 and summary["succeeded"] == 2
    assert summary["rows"] == results[0]["rows"] + results[2]["rows"]


PARTITIONS = ["2026-01-01T00", "2026-01-01T01", "2026-01-01T02"]


def test_a_complete_run_passes_the_completeness_check():
    require_complete(summarize([process_partition(key) for key in PARTITIONS], PARTITIONS))


def test_a_failed_partition_fails_the_completeness_check_without_retry():
    # Airflow passes only the results that exist: a failed partition is simply missing.
    summary = summarize([process_partition(PARTITIONS[0])], PARTITIONS)

    with pytest.raises(AirflowFailException, match="2 of 3 partitions failed or produced nothing"):
        require_complete(summary)
