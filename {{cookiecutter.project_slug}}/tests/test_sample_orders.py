from datetime import UTC, datetime

import pytest

from {{ cookiecutter.project_slug }}.sample_orders import batch_size, generate_orders, summarize

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 2, tzinfo=UTC)


def test_same_interval_gives_same_orders():
    assert generate_orders(START, END, 5) == generate_orders(START, END, 5)


def test_orders_fall_inside_the_interval():
    orders = generate_orders(START, END, 50)
    assert all(START.timestamp() <= order["placed_at"] < END.timestamp() for order in orders)


def test_negative_count_is_rejected():
    with pytest.raises(ValueError, match="negative"):
        generate_orders(START, END, -1)


def test_summary_adds_exact_decimals():
    orders = [{"amount": "0.10"}, {"amount": "0.20"}]
    assert summarize(orders) == {"orders": 2, "revenue": "0.30"}


@pytest.mark.parametrize(("value", "size"), [("100", 100), ("0", 0), (" 7 ", 7)])
def test_batch_size_reads_a_whole_number(value, size):
    assert batch_size(value) == size


@pytest.mark.parametrize("value", ["", "ten", "-1", "2.5"])
def test_a_bad_batch_size_names_the_variable(value):
    with pytest.raises(ValueError, match=f"Variable 'example_batch_size' must be a whole number .* got {value!r}"):
        batch_size(value)
