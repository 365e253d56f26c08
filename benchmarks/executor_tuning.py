"""Tuned vs stock: the generated airflow.cfg against Airflow's defaults, side by side in one run.

    PYENV_VERSION=... .cache/tools/bin/python benchmarks/executor_tuning.py [--executors local celery] [--runs 3]

For each executor it bakes the project, installs its pinned requirements (the test suite's
cached venvs), adds two benchmark DAGs (100 mapped no-op tasks; 100 independent no-op tasks),
and runs the same stack twice on the same Postgres server, once with the project's
config/airflow.cfg and once with an empty config (Airflow's stock defaults, plus only the
executor). Per DAG it reports the median over runs of trigger-to-success wall time, the peak
RSS summed over every Airflow process, and the median queued-to-running delay of its tasks;
and `airflow dags report`'s parse time per file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TEMPLATE_DIR / "tests"))
from airflow_stack import airflow_stack  # noqa: E402  (the test suite's stack, so both measure the same thing)
from helpers import VARIANTS, BakedProject, bake  # noqa: E402
from services import postgres_server, redis_server  # noqa: E402

BENCH_DAGS = """
import pendulum
from airflow.sdk import DAG, task

ARGS = {"owner": "bench", "retries": 0}
START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG("bench_mapped", schedule=None, start_date=START, catchup=False, default_args=ARGS, tags=["bench"]):

    @task
    def noop(number: int) -> None:
        pass

    noop.expand(number=list(range(100)))

# Real (if tiny) tasks: EmptyOperator would be marked done by the scheduler, never executed.
with DAG("bench_wide", schedule=None, start_date=START, catchup=False, default_args=ARGS, tags=["bench"]):

    @task
    def short() -> None:
        pass

    for number in range(100):
        short.override(task_id=f"short_{number}")()
"""
BENCH_DAG_IDS = ("bench_mapped", "bench_wide")


class GroupUsage:
    """Samples the processes of the given process groups until stopped: peak summed RSS, and CPU seconds.

    CPU seconds count user + system time, including that of reaped children (task processes
    are reaped by their long-lived supervisors), of every process alive at the end, minus what
    it had used at the start. Unlike wall time, that figure barely moves when other work shares
    the cores, so it shows what a configuration costs even on a busy machine.
    """

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, groups: list[int]) -> None:
        self.groups, self.peak, self._stop = set(groups), 0, threading.Event()
        self._cpu_at_start = self._cpu_ticks()
        self.cpu_seconds = 0.0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> GroupUsage:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        at_end = self._cpu_ticks()
        self.cpu_seconds = sum(ticks - self._cpu_at_start.get(pid, 0) for pid, ticks in at_end.items()) / self.TICKS

    def _members(self):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) in self.groups:
                    yield int(entry.name), entry
            except (OSError, ProcessLookupError):
                continue

    def _cpu_ticks(self) -> dict[int, int]:
        ticks = {}
        for pid, entry in self._members():
            try:
                # Fields after the ")" that ends the command name: utime, stime, cutime, cstime are 12-15.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks[pid] = sum(int(value) for value in fields[11:15])
        return ticks

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            total = 0
            for _, entry in self._members():
                try:
                    status = (entry / "status").read_text()
                except OSError:
                    continue
                rss = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0")
                total += int(rss) * 1024
            self.peak = max(self.peak, total)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def measure(stack, dag_id: str) -> dict:
    groups = [process.pid for process in stack.processes.values()]
    start = time.monotonic()
    with GroupUsage(groups) as usage:
        run_id = stack.trigger(dag_id, None)
        state = stack.wait_for_run(dag_id, run_id, timeout=900)
    wall = time.monotonic() - start
    instances = stack.task_instances(dag_id, run_id)

    def median_delay(since: str) -> float:
        return statistics.median(
            (parse_time(ti["start_date"]) - parse_time(ti[since])).total_seconds()
            for ti in instances
            if ti.get(since) and ti.get("start_date")
        )

    return {
        "state": state,
        "wall": wall,
        "peak_rss": usage.peak,
        "cpu": usage.cpu_seconds,
        # Queued to running is the executor's share; scheduled to running also counts the wait
        # for a free slot, which a smaller pool moves from the scheduler into the executor's queue.
        "queue_delay": median_delay("queued_when"),
        "schedule_delay": median_delay("scheduled_when"),
    }


def seconds(duration: float | str) -> float:
    """`dags report` prints durations as seconds or as H:MM:SS.ffffff, depending on the output format."""
    if isinstance(duration, (int, float)):
        return float(duration)
    hours, minutes, secs = duration.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def json_rows(output: str) -> list[dict]:
    """The JSON table a CLI command printed among its log lines."""
    for line in reversed(output.splitlines()):
        if line.startswith("[{"):
            return json.loads(line)
    raise ValueError(f"no JSON table in:\n{output[-2000:]}")


def run_config(project: BakedProject, home: Path, extra_env: dict, runs: int, celery: bool) -> dict:
    results: dict[str, list[dict]] = {dag_id: [] for dag_id in BENCH_DAG_IDS}
    with airflow_stack(project, home, extra_env) as stack:
        if celery:
            stack.start("worker", "celery", "worker")
        stack.wait_for_dags(set(BENCH_DAG_IDS))
        for _ in range(runs):
            for dag_id in BENCH_DAG_IDS:
                results[dag_id].append(measure(stack, dag_id))
        # One `dags report` parses each file once, so a single sample is noisy: keep the median.
        reports = [json_rows(stack.airflow("dags", "report", "--output", "json").stdout) for _ in range(runs)]
    files = {row["file"] for report in reports for row in report}
    parse = {
        file: statistics.median(seconds(row["duration"]) for report in reports for row in report if row["file"] == file)
        for file in files
    }
    return {"runs": results, "parse": parse}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executors", nargs="+", default=["local", "celery"], choices=["local", "celery"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    parse_times: dict[tuple[str, str], dict[str, float]] = {}
    for executor in args.executors:
        scratch = Path(tempfile.mkdtemp(prefix=f"bench-{executor}-"))
        project = BakedProject(bake(scratch, **VARIANTS[executor]), VARIANTS[executor])
        (project.path / "dags" / "bench_dags.py").write_text(BENCH_DAGS)
        stock_cfg = scratch / "stock.cfg"
        stock_cfg.write_text(f"[core]\nexecutor = {'CeleryExecutor' if executor == 'celery' else 'LocalExecutor'}\n")
        with postgres_server(("tuned", "stock")) as urls, redis_server() as broker:
            for config in ("stock", "tuned"):
                home = scratch / f"home-{config}"
                home.mkdir()
                env = {
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls[config].replace(
                        "postgresql://", "postgresql+psycopg://"
                    ),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    "AIRFLOW__CELERY__BROKER_URL": broker.replace("/0", "/1" if config == "tuned" else "/0"),
                    "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + urls[config],
                }
                if config == "stock":
                    env["AIRFLOW_CONFIG"] = str(stock_cfg)
                result = run_config(project, home, env, args.runs, celery=executor == "celery")
                parse_times[executor, config] = result["parse"]
                for dag_id, samples in result["runs"].items():
                    assert all(sample["state"] == "success" for sample in samples), samples
                    rows.append(
                        {
                            "executor": executor,
                            "config": config,
                            "dag": dag_id,
                            "wall_s": statistics.median(sample["wall"] for sample in samples),
                            "peak_rss_gib": statistics.median(sample["peak_rss"] for sample in samples) / 2**30,
                            "queue_delay_s": statistics.median(sample["queue_delay"] for sample in samples),
                            "schedule_delay_s": statistics.median(sample["schedule_delay"] for sample in samples),
                            "cpu_s": statistics.median(sample["cpu"] for sample in samples),
                            "parse_s": max(result["parse"].values()),
                        }
                    )
    columns = (
        "executor | DAG | config | trigger to success s | peak RSS GiB | CPU s | queued to running s"
        " | scheduled to running s | slowest parse s | wall vs stock | RSS vs stock | CPU vs stock"
    )
    print(f"| {columns} |")
    print("|---" * (columns.count("|") + 1) + "|")
    for row in rows:
        stock = next(
            r for r in rows if (r["executor"], r["dag"], r["config"]) == (row["executor"], row["dag"], "stock")
        )
        print(
            f"| {row['executor']} | {row['dag']} | {row['config']} | {row['wall_s']:.1f} | {row['peak_rss_gib']:.2f} "
            f"| {row['cpu_s']:.1f} | {row['queue_delay_s']:.2f} | {row['schedule_delay_s']:.2f} | {row['parse_s']:.3f} "
            f"| {row['wall_s'] / stock['wall_s']:.2f} | {row['peak_rss_gib'] / stock['peak_rss_gib']:.2f} "
            f"| {row['cpu_s'] / stock['cpu_s']:.2f} |"
        )
    print("\n`airflow dags report` parse time per file, seconds:\n")
    configs = list(parse_times)
    print("| file | " + " | ".join(f"{executor} {config}" for executor, config in configs) + " |")
    print("|---" * (len(configs) + 1) + "|")
    for file in sorted({file for times in parse_times.values() for file in times}):
        cells = " | ".join(f"{parse_times[key].get(file, float('nan')):.3f}" for key in configs)
        print(f"| {file} | {cells} |")


if __name__ == "__main__":
    main()
