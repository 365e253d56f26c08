"""Every DAG file imports cleanly, and the DagBag holds what the files declare."""

from __future__ import annotations

from {{ cookiecutter.project_slug }}.dag_checks import import_errors


def test_no_import_errors(dag_bag):
    # Cycles, duplicate dag_ids and unknown executors surface here as well.
    errors = import_errors(dag_bag)
    assert not errors, "DAG files failed to import:\n\n" + "\n\n".join(errors)
