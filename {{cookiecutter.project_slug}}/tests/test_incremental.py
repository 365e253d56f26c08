from datetime import UTC, datetime

import pytest

from {{ cookiecutter.project_slug }}.incremental import checked_identifier, replace_partition

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 2, tzinfo=UTC)


class RecordingConnection:
    """A DB-API connection that records statements and can fail on the insert."""

    def __init__(self, fail_on_insert: bool = False) -> None:
        self.statements: list[tuple[str, object]] = []
        self.committed = self.rolled_back = False
        self.fail_on_insert = fail_on_insert

    def cursor(self):
        connection = self

        class Cursor:
            def execute(self, sql, params):
                connection.statements.append((sql, params))

            def executemany(self, sql, rows):
                if connection.fail_on_insert:
                    raise RuntimeError("insert failed")
                connection.statements.append((sql, rows))

            def close(self):
                pass

        return Cursor()

    def commit(self):
        self.committed = True

    def rollback(self):
        self.rolled_back = True


def replace(connection, rows):
    return replace_partition(
        connection,
        table="orders",
        time_column="placed_at",
        columns=["order_id", "placed_at"],
        rows=rows,
        start=START,
        end=END,
    )


def test_deletes_the_interval_then_inserts_in_one_commit():
    connection = RecordingConnection()
    assert replace(connection, [("a", START), ("b", START)]) == 2
    (delete, bounds), (insert, rows) = connection.statements
    assert delete == "DELETE FROM orders WHERE placed_at >= %s AND placed_at < %s" and bounds == (START, END)
    assert insert == "INSERT INTO orders (order_id, placed_at) VALUES (%s, %s)" and len(rows) == 2
    assert connection.committed and not connection.rolled_back


def test_a_failed_insert_rolls_the_delete_back():
    connection = RecordingConnection(fail_on_insert=True)
    with pytest.raises(RuntimeError):
        replace(connection, [("a", START)])
    assert connection.rolled_back and not connection.committed


def test_an_empty_interval_still_clears_old_rows():
    connection = RecordingConnection()
    assert replace(connection, []) == 0
    assert [sql.split()[0] for sql, _ in connection.statements] == ["DELETE"]


@pytest.mark.parametrize("name", ["orders; drop table x", "Orders", "a.b.c", "1st", ""])
def test_identifiers_are_refused_unless_plain(name):
    with pytest.raises(ValueError, match="identifier"):
        checked_identifier(name)


def test_backwards_interval_is_refused():
    with pytest.raises(ValueError, match="ends before it starts"):
        replace_partition(
            RecordingConnection(), table="t", time_column="c", columns=["c"], rows=[], start=END, end=START
        )
