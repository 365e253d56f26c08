"""Deterministic sample orders for the example DAGs, so they run anywhere without a source system."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal

from airflow.sdk import Asset

# The warehouse table example_incremental_load fills and example_quality_gate checks. Each load
# announces the window it replaced in its asset event's extra (run_dates.Window.as_extra()).
EXAMPLE_ORDERS = Asset("example_orders")
BATCH_SIZE_VARIABLE = "example_batch_size"


def batch_size(value: str) -> int:
    """The example_batch_size Variable as a count; a ValueError names the Variable and what it holds."""
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size < 0:
        raise ValueError(f"Variable {BATCH_SIZE_VARIABLE!r} must be a whole number (0 or more), got {value!r}")
    return size


def generate_orders(interval_start: datetime, interval_end: datetime, count: int) -> list[dict]:
    """Orders placed in [interval_start, interval_end); the same interval always yields the same orders."""
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    rng = random.Random(interval_start.isoformat())
    span = (interval_end - interval_start).total_seconds()
    return [
        {
            "order_id": f"{interval_start:%Y%m%d}-{number:05d}",
            "placed_at": (interval_start.timestamp() + rng.random() * span),
            "amount": str(Decimal(rng.randint(100, 50_000)) / 100),
        }
        for number in range(count)
    ]


def summarize(orders: list[dict]) -> dict:
    """Order count and revenue, with revenue as a string so it survives XCom's JSON exactly."""
    revenue = sum((Decimal(order["amount"]) for order in orders), Decimal("0"))
    return {"orders": len(orders), "revenue": str(revenue)}
