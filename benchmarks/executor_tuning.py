"""Tuned vs stock: the generated airflow.cfg against Airflow's defaults, side by side in one run.

    PYENV_VERSION=... .cache/tools/bin/python benchmarks/executor_tuning.py [--executors local celery] [--runs 3]

For each executor it bakes the project, installs its pinned requirements (the test suite's
cached venvs), adds the benchmark DAGs, one file each (100 mapped no-op tasks; 100
independent no-op tasks; 10 DAGs of 10), and runs the same stack twice on the same Postgres
server, once with the project's config/airflow.cfg and once with an empty config (Airflow's
stock defaults, plus only the executor). Per DAG it reports the median over runs of
trigger-to-success wall time, the peak RSS summed over every Airflow process, and the median
queued-to-running delay of its tasks; and `airflow dags report`'s parse time per file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TEMPLATE_DIR / "tests"))
from airflow_stack import airflow_stack  # noqa: E402  (the test suite's stack, so both measure the same thing)
from helpers import VARIANTS, BakedProject, bake  # noqa: E402
from services import postgres_server, redis_server  # noqa: E402

BENCH_HEADER = """import pendulum
from airflow.sdk import DAG, task

ARGS = {"owner": "bench", "retries": 0}
START = pendulum.datetime(2026, 1, 1, tz="UTC")
"""
BENCH_MAPPED = """
with DAG("bench_mapped", schedule=None, start_date=START, catchup=False, default_args=ARGS, tags=["bench"]):

    @task
    def noop(number: int) -> None:
        pass

    noop.expand(number=list(range(100)))
"""
# Real (if tiny) tasks: EmptyOperator would be marked done by the scheduler, never executed.
BENCH_INDEPENDENT = """
with DAG("{dag_id}", schedule=None, start_date=START, catchup=False, default_args=ARGS, tags=["bench"]):

    @task
    def short() -> None:
        pass

    for number in range({tasks}):
        short.override(task_id=f"short_{{number}}")()
"""
BENCH_DAG_BODIES = {
    "bench_mapped": BENCH_MAPPED,
    "bench_wide": BENCH_INDEPENDENT.format(dag_id="bench_wide", tasks=100),
    **{f"bench_fleet_{n}": BENCH_INDEPENDENT.format(dag_id=f"bench_fleet_{n}", tasks=10) for n in range(10)},
}


def bench_dag_files(layout: str) -> dict[str, str]:
    """dags/ file name -> source. "per-dag" is one DAG per file, as the template's own dags/ are:
    a task parses only its own DAG's file. "one" is every DAG in one file (the layout before
    2026-12-07), where each task builds all 12 DAGs, 201 tasks."""
    if layout == "one":
        return {"bench_dags.py": BENCH_HEADER + "".join(BENCH_DAG_BODIES.values())}
    return {f"{dag_id}.py": BENCH_HEADER + body for dag_id, body in BENCH_DAG_BODIES.items()}


def add_bench_dags(dags_folder: Path, layout: str) -> None:
    for name, source in bench_dag_files(layout).items():
        (dags_folder / name).write_text(source)


# A workload is the DAGs triggered together and timed until the last one succeeds.
WORKLOADS = {
    "bench_mapped": ("bench_mapped",),
    "bench_wide": ("bench_wide",),
    "10 DAGs x 10": tuple(f"bench_fleet_{number}" for number in range(10)),
}
WORKLOAD_FOR_COMPONENTS = "bench_mapped"
DOCS = TEMPLATE_DIR / "docs" / "benchmarks.md"
BEGIN_MARK, END_MARK = "<!-- executor_tuning.py tables: begin -->", "<!-- executor_tuning.py tables: end -->"


class GroupUsage:
    """Samples the named process groups until stopped: peak summed RSS and PSS, each group's peak RSS, CPU seconds.

    RSS counts a page shared by forked processes once per process, so a pool of forked workers
    reads bigger than it is; PSS splits each shared page among its sharers. CPU seconds count
    user + system time, including that of reaped children (task processes are reaped by their
    long-lived supervisors), of every process alive at the end, minus what it had used at the
    start. Unlike wall time, that figure barely moves when other work shares the cores, so it
    shows what a configuration costs even on a busy machine.
    """

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, groups: dict[str, int]) -> None:
        self.groups, self._stop = groups, threading.Event()
        self.peak_rss = self.peak_pss = 0
        self.peak_by_group = dict.fromkeys(groups, 0)
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
        names = {pgid: name for name, pgid in self.groups.items()}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                name = names.get(os.getpgid(int(entry.name)))
            except (OSError, ProcessLookupError):
                continue
            if name:
                yield name, int(entry.name), entry

    def _cpu_ticks(self) -> dict[int, int]:
        ticks = {}
        for _, pid, entry in self._members():
            try:
                # Fields after the ")" that ends the command name: utime, stime, cutime, cstime are 12-15.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks[pid] = sum(int(value) for value in fields[11:15])
        return ticks

    @staticmethod
    def _kib(text: str, field_name: str) -> int:
        return next((int(line.split()[1]) for line in text.splitlines() if line.startswith(field_name)), 0)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            rss_by_group, pss = dict.fromkeys(self.groups, 0), 0
            for name, _, entry in self._members():
                try:
                    rollup = (entry / "smaps_rollup").read_text()
                except OSError:
                    continue
                rss_by_group[name] += self._kib(rollup, "Rss:") * 1024
                pss += self._kib(rollup, "Pss:") * 1024
            self.peak_rss = max(self.peak_rss, sum(rss_by_group.values()))
            self.peak_pss = max(self.peak_pss, pss)
            for name, rss in rss_by_group.items():
                self.peak_by_group[name] = max(self.peak_by_group[name], rss)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(stack, dag_ids: tuple[str, ...]) -> dict:
    """Trigger every DAG of a workload at once and time it from the first trigger to the last run's end."""
    with GroupUsage({name: process.pid for name, process in stack.processes.items()}) as usage:
        triggered = datetime.now(UTC)
        run_ids = {dag_id: stack.trigger(dag_id, None) for dag_id in dag_ids}
        states = {dag_id: stack.wait_for_run(dag_id, run_id, timeout=900) for dag_id, run_id in run_ids.items()}
    runs = [stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}") for dag_id, run_id in run_ids.items()]
    instances = [ti for dag_id, run_id in run_ids.items() for ti in stack.task_instances(dag_id, run_id)]

    def delays(since: str) -> list[float]:
        return [
            (parse_time(ti["start_date"]) - parse_time(ti[since])).total_seconds()
            for ti in instances
            if ti.get(since) and ti.get("start_date")
        ]

    return {
        "state": "success" if set(states.values()) == {"success"} else str(states),
        # The runs' own end dates, not the 2 s polling, so the figure has no polling step in it.
        "wall": (max(parse_time(run_["end_date"]) for run_ in runs) - triggered).total_seconds(),
        "peak_rss": usage.peak_rss,
        "peak_pss": usage.peak_pss,
        "peak_by_group": usage.peak_by_group,
        "cpu": usage.cpu_seconds,
        # Queued to running is the executor's share; scheduled to running also counts the wait
        # for a free slot, which a smaller pool moves from the scheduler into the executor's queue.
        "queue_p50": statistics.median(delays("queued_when")),
        "queue_p95": percentile(delays("queued_when"), 0.95),
        "schedule_p50": statistics.median(delays("scheduled_when")),
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
    results: dict[str, list[dict]] = {workload: [] for workload in WORKLOADS}
    with airflow_stack(project, home, extra_env) as stack:
        if celery:
            stack.start("worker", "celery", "worker")
        stack.wait_for_dags({dag_id for dag_ids in WORKLOADS.values() for dag_id in dag_ids})
        for _ in range(runs):
            for workload, dag_ids in WORKLOADS.items():
                results[workload].append(measure(stack, dag_ids))
        # One `dags report` parses each file once, so a single sample is noisy: keep the median.
        reports = [json_rows(stack.airflow("dags", "report", "--output", "json").stdout) for _ in range(runs)]
    files = {row["file"] for report in reports for row in report}
    parse = {
        file: statistics.median(seconds(row["duration"]) for report in reports for row in report if row["file"] == file)
        for file in files
    }
    return {"runs": results, "parse": parse}


def parse_trial(text: str) -> tuple[str, dict[str, str]]:
    """NAME:AIRFLOW__SECTION__KEY=VALUE,...: the tuned config with these environment overrides."""
    name, _, assignments = text.partition(":")
    overrides = dict(item.split("=", 1) for item in assignments.split(",") if item)
    if not name or not overrides or not all(key.startswith("AIRFLOW__") for key in overrides):
        raise argparse.ArgumentTypeError(f"--try wants NAME:AIRFLOW__SECTION__KEY=VALUE[,...], got {text!r}")
    return name, overrides


def median_of(samples: list[dict], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def summarise(executor: str, config: str, result: dict) -> list[dict]:
    rows = []
    for workload, samples in result["runs"].items():
        failed = [sample["state"] for sample in samples if sample["state"] != "success"]
        assert not failed, f"{executor} {config} {workload}: {failed}"
        rows.append(
            {"executor": executor, "config": config, "workload": workload}
            | {key: median_of(samples, key) for key in ("wall", "peak_rss", "peak_pss", "cpu")}
            | {key: median_of(samples, key) for key in ("queue_p50", "queue_p95", "schedule_p50")}
            | {
                "by_group": {
                    name: statistics.median(s["peak_by_group"][name] for s in samples)
                    for name in samples[0]["peak_by_group"]
                }
            }
        )
    return rows


def markdown(rows: list[dict], parse_times: dict[tuple[str, str], dict[str, float]]) -> str:
    gib = 2**30
    lines = [
        "| executor | workload | config | trigger to success s | peak RSS GiB | peak PSS GiB | CPU s"
        " | queued to running P50 s | P95 s | scheduled to running P50 s | wall vs stock | RSS vs stock"
        " | PSS vs stock | CPU vs stock |",
        "|---" * 14 + "|",
    ]
    for row in rows:
        stock = next(
            r
            for r in rows
            if (r["executor"], r["workload"], r["config"]) == (row["executor"], row["workload"], "stock")
        )
        cells = [row["executor"], row["workload"], row["config"], f"{row['wall']:.1f}"]
        cells += [f"{row['peak_rss'] / gib:.2f}", f"{row['peak_pss'] / gib:.2f}", f"{row['cpu']:.1f}"]
        cells += [f"{row[key]:.2f}" for key in ("queue_p50", "queue_p95", "schedule_p50")]
        cells += [f"{row[key] / stock[key]:.2f}" for key in ("wall", "peak_rss", "peak_pss", "cpu")]
        lines.append("| " + " | ".join(cells) + " |")
    groups = sorted({name for row in rows for name in row["by_group"]})
    lines += ["", "Peak RSS per component, GiB (median over runs, " + WORKLOAD_FOR_COMPONENTS + "):", ""]
    lines += ["| executor | config | " + " | ".join(groups) + " |", "|---" * (len(groups) + 2) + "|"]
    for row in rows:
        if row["workload"] == WORKLOAD_FOR_COMPONENTS:
            cells = " | ".join(f"{row['by_group'].get(name, 0) / gib:.2f}" for name in groups)
            lines.append(f"| {row['executor']} | {row['config']} | {cells} |")
    configs = list(parse_times)
    lines += ["", "`airflow dags report` parse time per file, seconds (median over runs):", ""]
    lines += ["| file | " + " | ".join(f"{executor} {config}" for executor, config in configs) + " |"]
    lines += ["|---" * (len(configs) + 1) + "|"]
    for file in sorted({file for times in parse_times.values() for file in times}):
        cells = " | ".join(f"{parse_times[key].get(file, float('nan')):.3f}" for key in configs)
        lines.append(f"| {file} | {cells} |")
    return "\n".join(lines)


def write_docs(table: str, command: str) -> None:
    """Replace the generated block of docs/benchmarks.md, so the docs show exactly the last run."""
    text = DOCS.read_text()
    begin, end = text.index(BEGIN_MARK), text.index(END_MARK)
    block = f"{BEGIN_MARK}\n<!-- written by: {command} -->\n\n{table}\n\n"
    DOCS.write_text(text[:begin] + block + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executors", nargs="+", default=["local", "celery"], choices=["local", "celery"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--try",
        dest="trials",
        type=parse_trial,
        action="append",
        default=[],
        metavar="NAME:AIRFLOW__SECTION__KEY=VALUE,...",
        help="also measure the tuned config with these overrides (repeatable); NAME celery.x: that executor only",
    )
    parser.add_argument(
        "--dag-files",
        choices=["per-dag", "one"],
        default="per-dag",
        help="one DAG per file (default), or all 12 in one file as runs before 2026-12-07 had them",
    )
    parser.add_argument("--write", action="store_true", help="write the tables into docs/benchmarks.md")
    args = parser.parse_args()
    rows = []
    parse_times: dict[tuple[str, str], dict[str, float]] = {}
    configs = {"stock": {}, "tuned": {}} | dict(args.trials)
    failures: list[str] = []
    for executor in args.executors:
        scratch = Path(tempfile.mkdtemp(prefix=f"bench-{executor}-"))
        project = BakedProject(bake(scratch, **VARIANTS[executor]), VARIANTS[executor])
        add_bench_dags(project.path / "dags", args.dag_files)
        stock_cfg = scratch / "stock.cfg"
        stock_cfg.write_text(f"[core]\nexecutor = {'CeleryExecutor' if executor == 'celery' else 'LocalExecutor'}\n")
        with postgres_server(tuple(configs)) as urls, redis_server() as broker:
            for number, (config, overrides) in enumerate(configs.items()):
                if "." in config and not config.startswith(f"{executor}."):
                    continue  # a trial named celery.NAME applies to CeleryExecutor only
                home = scratch / f"home-{config}"
                home.mkdir()
                env = {
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls[config].replace(
                        "postgresql://", "postgresql+psycopg://"
                    ),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    "AIRFLOW__CELERY__BROKER_URL": broker.replace("/0", f"/{number}"),
                    "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + urls[config],
                    **overrides,
                }
                if config == "stock":
                    env["AIRFLOW_CONFIG"] = str(stock_cfg)
                try:
                    result = run_config(project, home, env, args.runs, celery=executor == "celery")
                    rows += summarise(executor, config, result)
                except Exception as error:  # a trial that breaks Airflow is a result too: keep measuring
                    failures.append(f"- {executor} {config} did not finish: {str(error).splitlines()[0][:300]}")
                    print(failures[-1], file=sys.stderr, flush=True)
                    continue
                parse_times[executor, config] = result["parse"]
                print(f"{executor} {config}: {json.dumps(rows[-len(WORKLOADS) :])}", file=sys.stderr, flush=True)
    table = markdown(rows, parse_times) + "".join(f"\n{line}" for line in ["", *failures] if failures)
    print(table)
    if args.write:
        write_docs(table, "executor_tuning.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
