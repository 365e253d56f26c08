"""Every DAG file imported by this project's Airflow: one subprocess per file, a time limit, all cores.

A fork server imports Airflow once; each file then gets its own fork, so a file that hangs,
leaks or crashes cannot stop the report, and no file pays Airflow's import time again. A file
gets `timeout` seconds, like Airflow's own `[core] dagbag_import_timeout` (which is set to the
same value, so Airflow's own timeout message comes back); a file that ignores that signal is
killed a few seconds later.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from upgrade_check import parse_child
from upgrade_check.model import ParseResult, blocking_message

KILL_GRACE_SECONDS = 5
PRELOAD_VARIABLE = "UPGRADE_CHECK_PRELOAD"  # read by preload.py, in the fork server
TIMEOUT_MARKER = "DagBag import timeout"


@dataclass(frozen=True)
class ParseJob:
    key: str  # how the caller names the result
    path: Path
    search_path: tuple[str, ...]


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def airflow_environment(home: Path, dags_folder: Path, plugins_folder: Path | None, timeout: float) -> dict:
    """Settings for the Airflow that parses: this project's config, the old DAGs, nothing shared."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder or home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": str(timeout),
        # Parsing needs no secrets; a remote backend would need credentials.
        "AIRFLOW__SECRETS__BACKEND": "",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
    }


def to_result(message: dict) -> ParseResult:
    errors = message["errors"]
    if not errors:
        return ParseResult(
            True, message["seconds"], message["dag_ids"], pools=message["pools"], connections=message["connections"]
        )
    traceback = "\n\n".join(errors)
    timed_out = TIMEOUT_MARKER in traceback
    error = next((line for line in traceback.splitlines() if TIMEOUT_MARKER in line), None) if timed_out else None
    return ParseResult(
        False, message["seconds"], message["dag_ids"], error or blocking_message(errors[0]), traceback, timed_out
    )


def parse_files(jobs: list[ParseJob], timeout: float, workers: int, pre_imports: list[str]) -> dict[str, ParseResult]:
    """Parse every job's file; the caller has put Airflow's settings into os.environ already."""
    os.environ[PRELOAD_VARIABLE] = ",".join(pre_imports)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["upgrade_check.preload"])
    waiting, running, results = deque(jobs), {}, {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                job = waiting.popleft()
                receive, send = context.Pipe(duplex=False)
                process = context.Process(
                    target=parse_child.parse, args=(send, str(job.path), list(job.search_path), pre_imports)
                )
                process.start()
                send.close()
                running[process.sentinel] = (job, process, receive, time.monotonic() + timeout + KILL_GRACE_SECONDS)
            soonest = min(deadline for *_, deadline in running.values())
            ready = set(wait([*running, *(entry[2] for entry in running.values())], max(0, soonest - time.monotonic())))
            for sentinel, (job, process, receive, deadline) in list(running.items()):
                if receive in ready and job.key not in results:
                    try:
                        results[job.key] = to_result(receive.recv())
                    except EOFError:
                        pass  # the file ended its own process; reported when the sentinel fires
                if sentinel in ready or time.monotonic() > deadline:
                    if sentinel not in ready:
                        process.kill()
                        killed = ParseResult(False, timeout, error=f"still importing after {timeout:g} s: killed")
                        killed.timed_out = True
                        results.setdefault(job.key, killed)
                    process.join()
                    receive.close()
                    del running[sentinel]
                    results.setdefault(
                        job.key,
                        ParseResult(False, error=f"the import ended the process (exit code {process.exitcode})"),
                    )
    finally:
        for _, process, receive, _ in running.values():
            process.kill()
            process.join()
            receive.close()
    return results
