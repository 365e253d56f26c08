"""Airflow template strings (`"{{ ds }}"`) read with Jinja's own parser, not with regexes.

Airflow renders templates with `StrictUndefined`: a name missing from the context fails the task.
Runs without a logical date (manual runs with `logical_date: null`, asset-triggered runs) have no
`ds`, `ts`, `logical_date` or data interval in their context on Airflow 3. A use is safe only
behind a fallback that StrictUndefined allows: the `default` filter, or an `is defined` test.
`ds or ...` and `ts if logical_date else ...` still fail, because they test an undefined name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import jinja2
from jinja2 import nodes

# Context keys Airflow 3 removed.
REMOVED_KEYS = frozenset(
    {
        "execution_date",
        "next_execution_date",
        "prev_execution_date",
        "prev_execution_date_success",
        "next_ds",
        "next_ds_nodash",
        "prev_ds",
        "prev_ds_nodash",
        "tomorrow_ds",
        "tomorrow_ds_nodash",
        "yesterday_ds",
        "yesterday_ds_nodash",
    }
)
# Context keys that exist only when the run has a logical date (airflow.sdk's task runner).
LOGICAL_DATE_KEYS = frozenset(
    {
        "logical_date",
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "data_interval_start",
        "data_interval_end",
        "prev_data_interval_start_success",
        "prev_data_interval_end_success",
    }
)
FALLBACK_FILTERS = frozenset({"default", "d"})
DEFINED_TESTS = frozenset({"defined", "undefined"})


@dataclass(frozen=True)
class TemplateName:
    name: str
    line: int  # 1-based, within the template
    guarded: bool


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment()


def looks_like_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def _has_defined_test(node: nodes.Node) -> bool:
    return any(test.name in DEFINED_TESTS for test in node.find_all(nodes.Test)) or (
        isinstance(node, nodes.Test) and node.name in DEFINED_TESTS
    )


def _walk(node: nodes.Node, guarded: bool) -> Iterator[tuple[nodes.Name, bool]]:
    if isinstance(node, nodes.Name):
        yield node, guarded
        return
    if isinstance(node, nodes.Filter | nodes.Test) and (node.name in FALLBACK_FILTERS or node.name in DEFINED_TESTS):
        # The filtered or tested value is guarded; the fallback itself is not.
        if node.node is not None:
            yield from _walk(node.node, True)
        for child in (*node.args, *(kwarg.value for kwarg in node.kwargs)):
            yield from _walk(child, guarded)
        return
    if isinstance(node, nodes.If | nodes.CondExpr) and _has_defined_test(node.test):
        yield from _walk(node.test, guarded)
        for child in node.iter_child_nodes(exclude=("test",)):
            yield from _walk(child, True)
        return
    for child in node.iter_child_nodes():
        yield from _walk(child, guarded)


def context_names(text: str) -> list[TemplateName]:
    """The removed and logical-date context names a template reads; [] if it is not valid Jinja."""
    try:
        tree = environment().parse(text)
    except jinja2.TemplateSyntaxError:
        return []
    return [
        TemplateName(name.name, name.lineno, guarded)
        for name, guarded in _walk(tree, False)
        if name.ctx == "load" and name.name in REMOVED_KEYS | LOGICAL_DATE_KEYS
    ]
