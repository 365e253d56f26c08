from datetime import UTC, datetime

from {{ cookiecutter.project_slug }}.batch_processing import hourly_partitions, process_partition, summarize


def test_a_day_has_24_hourly_partitions():
    keys = hourly_partitions(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    assert len(keys) == 24 and keys[0] == "2026-01-01T00" and keys[-1] == "2026-01-01T23"


def test_an_empty_interval_has_no_partitions():
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert hourly_partitions(moment, moment) == []


def test_summary_counts_only_partitions_that_produced_results():
    results = [process_partition("2026-01-01T00"), None, process_partition("2026-01-01T01")]
    summary = summarize(results)
    assert summary["partitions"] == 3 and summary["succeeded"] == 2
    assert summary["rows"] == results[0]["rows"] + results[2]["rows"]
