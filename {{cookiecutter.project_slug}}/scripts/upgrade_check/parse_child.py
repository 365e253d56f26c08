"""Runs in the subprocess that imports one DAG file, forked from a server that imported Airflow once.

Nothing here runs in the process that writes the report: a DAG file that hangs, crashes the
interpreter or prints to the terminal only affects its own subprocess.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from multiprocessing.connection import Connection


def resolved_references(dags: list) -> tuple[list[str], list[str]]:
    """Pools and connection ids the parsed tasks will use, defaults included."""
    pools, connections = set(), set()
    for dag in dags:
        for task in dag.tasks:
            pools.add(task.pool)
            connections |= {
                value
                for name, value in vars(task).items()
                if (name == "conn_id" or name.endswith("_conn_id")) and isinstance(value, str) and "{" not in value
            }
    return sorted(pools), sorted(connections)


def parse(result: Connection, path: str, search_path: list[str], pre_imports: list[str]) -> None:
    """Import one DAG file as Airflow's DagBag does, and send what happened through `result`."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    # As the dag-processor does: the DAG's folder and the plugins folder come first on sys.path,
    # and Airflow modules the file imports are loaded before the clock starts.
    sys.path[:0] = [folder for folder in search_path if folder not in sys.path]
    for module in pre_imports:
        try:
            importlib.import_module(module)
        except Exception:  # the file's own import reports it
            pass
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=path)
    elapsed = time.perf_counter() - started
    durations = [stat.duration.total_seconds() for stat in bag.dagbag_stats]
    pools, connections = resolved_references(list(bag.dags.values()))
    result.send(
        {
            "dag_ids": sorted(bag.dag_ids),
            "errors": [str(error) for error in bag.import_errors.values()],
            "seconds": sum(durations) if durations else elapsed,
            "pools": pools,
            "connections": connections,
        }
    )
    result.close()
