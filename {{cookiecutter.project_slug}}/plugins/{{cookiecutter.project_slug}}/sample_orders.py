"""Deterministic sample orders for the example DAGs, so they run anywhere without a source system."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal


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
