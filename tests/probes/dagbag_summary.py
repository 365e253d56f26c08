"""What Airflow makes of a DAG folder with the project's config, as one JSON line: the DAG ids, the
import errors, the executors it loads, and whether it would load Airflow's example DAGs.

Usage: python dagbag_summary.py <dags folder or file>
"""

from __future__ import annotations

import json
import sys

from airflow.configuration import conf
from airflow.dag_processing.dagbag import DagBag
from airflow.executors.executor_loader import ExecutorLoader

bag = DagBag(dag_folder=sys.argv[1])
print(
    json.dumps(
        {
            "dag_ids": sorted(bag.dag_ids),
            "import_errors": bag.import_errors,
            "executors": [type(executor).__name__ for executor in ExecutorLoader.init_executors()],
            "load_examples": conf.getboolean("core", "load_examples"),
        }
    )
)
