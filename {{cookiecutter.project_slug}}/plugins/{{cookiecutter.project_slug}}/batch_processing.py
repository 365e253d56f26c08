"""Logic for the dynamic task mapping example: split an interval, process parts, summarize."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk.exceptions import AirflowFailException


def hourly_partitions(start: datetime, end: datetime) -> list[str]:
    """One partition key per hour in [start, end): the fan-out width is only known at run time."""
    keys = []
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        keys.append(hour.strftime("%Y-%m-%dT%H"))
        hour += timedelta(hours=1)
    return keys


def process_partition(key: str) -> dict:
    """Stand-in for real per-partition work: a deterministic row count derived from the key."""
    return {"partition": key, "rows": sum(map(ord, key)) % 97}


def summarize(results: list[dict | None], partitions: list[str]) -> dict:
    """Totals over the partitions that produced a result.

    A failed or skipped partition leaves no result, and Airflow hands a downstream task only the
    results that exist: how many there should have been comes from the partition list.
    """
    done = [result for result in results if result]
    return {
        "partitions": len(partitions),
        "succeeded": len(done),
        "rows": sum(result["rows"] for result in done),
    }


class IncompleteRun(AirflowFailException):
    """Some partitions produced no result. Raised by a leaf task, it fails the DAG run, which is what
    run-level health checks, max_consecutive_failed_dag_runs and downstream consumers look at."""


def require_complete(summary: dict) -> None:
    """Fail unless every partition produced a result; retrying this check cannot change that."""
    missing = summary["partitions"] - summary["succeeded"]
    if missing:
        raise IncompleteRun(
            f"{missing} of {summary['partitions']} partitions failed or produced nothing: the run is incomplete. "
            "Clear the failed `process` tasks to re-run just those partitions."
        )
