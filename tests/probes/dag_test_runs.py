"""`airflow dags test` for several DAGs in one process, with the CLI's logical date (now) or none.

The CLI always passes a logical date to DAG.test(): the one given, or now. DAG.test() also takes
logical_date=None and then creates the run the REST API creates for `"logical_date": null`, the
UI for a cleared date and the scheduler for an asset event: no logical date, no data interval,
run_after now. One process for all the DAGs pays Airflow's start-up once.

Usage: python dag_test_runs.py {now,none} <dag_id>...
Prints one line `RESULTS <json>`: per DAG id, the run's state, logical date and run id.
"""

from __future__ import annotations

import json
import sys

from airflow.cli.commands.dag_command import get_bagged_dag
from airflow.utils import timezone


def main() -> int:
    mode, dag_ids = sys.argv[1], sys.argv[2:]
    results = {}
    for dag_id in dag_ids:
        logical_date = timezone.utcnow() if mode == "now" else None
        try:
            run = get_bagged_dag(bundle_names=None, dag_id=dag_id).test(logical_date=logical_date)
        except Exception as error:  # one DAG's crash must not hide the others' results
            results[dag_id] = {"state": "crashed", "error": repr(error)}
            continue
        results[dag_id] = {
            "state": str(run.state),
            "logical_date": run.logical_date and run.logical_date.isoformat(),
            "run_id": run.run_id,
        }
    print("RESULTS " + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
