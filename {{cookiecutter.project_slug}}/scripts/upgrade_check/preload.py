"""Imported only by the fork server that parses DAG files: Airflow and the modules the DAG files use, once.

Each DAG file is then parsed in a fork of that server, with all of this already in memory. The
modules come from `UPGRADE_CHECK_PRELOAD` (comma-separated), set by parsing.py. An old DAG file
may name a module that no longer imports, or raises on import: it is skipped here, and that
file's own import reports it.
"""

import gc
import importlib
import os

AIRFLOW_MODULES = ("airflow.dag_processing.dagbag", "airflow.sdk")
PRELOAD_VARIABLE = "UPGRADE_CHECK_PRELOAD"

for module in (*AIRFLOW_MODULES, *filter(None, os.environ.get(PRELOAD_VARIABLE, "").split(","))):
    try:
        importlib.import_module(module)
    except Exception:  # see the docstring
        pass

# As the dag-processor does before it forks: the children's garbage collector skips all of the above.
gc.freeze()
