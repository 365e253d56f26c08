"""Logic for the dynamic task mapping example: split an interval, process parts, summarize."""

from __future__ import annotations

from datetime import datetime, timedelta


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


def summarize(results: list[dict | None]) -> dict:
    """Totals over the partitions that produced a result; failed or skipped ones arrive as None."""
    done = [result for result in results if result]
    return {
        "partitions": len(results),
        "succeeded": len(done),
        "rows": sum(result["rows"] for result in done),
    }
