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
import sys
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from scripts.upgrade_check import parse_child
from scripts.upgrade_check.model import ParseResult, blocking_message

KILL_GRACE_SECONDS = 5
PRELOAD_VARIABLE = "UPGRADE_CHECK_PRELOAD"  # read by preload.py, in the fork server
TIMEOUT_MARKER = "DagBag import timeout"
PROJECT_PLUGINS = str(Path(__file__).resolve().parents[2] / "plugins")


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


@dataclass
class Running:
    job: ParseJob
    process: multiprocessing.Process
    result: Connection
    deadline: float


def start(
    context: multiprocessing.context.ForkServerContext, job: ParseJob, timeout: float, pre_imports: list[str]
) -> Running:
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=parse_child.parse, args=(send, str(job.path), list(job.search_path), pre_imports))
    process.start()  # returns once the fork server has forked, so its own start-up is not on the clock
    send.close()  # the child holds the only writer: its exit means EOF here
    return Running(job, process, receive, time.monotonic() + timeout + KILL_GRACE_SECONDS)


def collect(running: Running, ready: set, timeout: float, results: dict[str, ParseResult]) -> bool:
    """Take what a running parse has sent; True once it is over (ended, or killed at its deadline)."""
    key = running.job.key
    if running.result in ready and key not in results:
        try:
            results[key] = to_result(running.result.recv())
        except EOFError:
            pass  # it ended without a word; reported below
    ended = running.process.sentinel in ready
    if not ended and time.monotonic() < running.deadline:
        return False
    if not ended:
        running.process.kill()
        results.setdefault(key, ParseResult(False, timeout, error=f"still importing after {timeout:g} s: killed"))
        results[key].timed_out = True
    running.process.join()
    running.result.close()
    results.setdefault(
        key, ParseResult(False, error=f"the import ended the process (exit code {running.process.exitcode})")
    )
    return True


def parse_files(jobs: list[ParseJob], timeout: float, workers: int, pre_imports: list[str]) -> dict[str, ParseResult]:
    """Parse every job's file, `workers` at a time; the caller has put Airflow's settings into os.environ."""
    os.environ[PRELOAD_VARIABLE] = ",".join(pre_imports)
    # This project's airflow.cfg names classes in its own plugin package (the XCom backend): the
    # fork server, which inherits sys.path, must import them as Airflow's plugin loading would.
    if PROJECT_PLUGINS not in sys.path:
        sys.path.append(PROJECT_PLUGINS)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["scripts.upgrade_check.preload"])
    waiting, running, results = deque(jobs), [], {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                running.append(start(context, waiting.popleft(), timeout, pre_imports))
            soonest = min(entry.deadline for entry in running)
            handles = [handle for entry in running for handle in (entry.process.sentinel, entry.result)]
            ready = set(wait(handles, max(0.0, soonest - time.monotonic())))
            running = [entry for entry in running if not collect(entry, ready, timeout, results)]
    finally:
        for entry in running:
            entry.process.kill()
            entry.process.join()
            entry.result.close()
    return results
