"""Every DAG file imports cleanly, and the DagBag holds what the files declare."""

from __future__ import annotations


def test_no_import_errors(dag_bag):
    # Cycles, duplicate dag_ids and unknown executors surface here as well.
    errors = "\n\n".join(f"{path}:\n{error}" for path, error in sorted(dag_bag.import_errors.items()))
    assert not dag_bag.import_errors, f"DAG files failed to import:\n\n{errors}"
