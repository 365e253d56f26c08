"""Report how every DAG has been doing over a lookback window, from the REST API v2.

    AIRFLOW_API_URL=https://airflow.example.com AIRFLOW_API_TOKEN=... \\
        python -m scripts.dag_health [--hours 24] [--dag-id ID ...] [--slowest 3] [--json]

Per DAG: its runs and task instances by state, failed runs and task instances, run duration
p50 and p95, and its slowest tasks by p95 duration. Runs count when they were due inside the
window (run_after); task instances belong to those runs, latest try each. It reads only the
REST API, never the metadata DB, so any user with read access can run it anywhere (docs/access.md,
"Access the tools need").

Credentials and the API's address are read as scripts/airflow_api.py describes. Exits 1 with
the reason when the API cannot be reached or refuses the credentials. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from scripts.airflow_api import AirflowClient, ApiError, AuthenticationError, PermissionDenied, Unreachable

FAILED = "failed"


@dataclass
class DagHealth:
    dag_id: str
    run_states: Counter = field(default_factory=Counter)
    task_states: Counter = field(default_factory=Counter)
    run_durations: list[float] = field(default_factory=list)
    task_durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def report(self, slowest: int) -> dict:
        tasks = [
            {"task_id": task_id, "count": len(durations), **summary(durations)}
            for task_id, durations in self.task_durations.items()
        ]
        tasks.sort(key=lambda task: (-task["p95"], task["task_id"]))
        return {
            "dag_id": self.dag_id,
            "runs": sum(self.run_states.values()),
            "runs_by_state": dict(sorted(self.run_states.items())),
            "failed_runs": self.run_states[FAILED],
            "run_duration_seconds": summary(self.run_durations) if self.run_durations else None,
            "task_instances": sum(self.task_states.values()),
            "task_instances_by_state": dict(sorted(self.task_states.items())),
            "failed_task_instances": self.task_states[FAILED],
            "slowest_tasks": tasks[:slowest],
        }


def percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks, as Postgres' percentile_cont."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(durations: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(durations, 0.50), 3),
        "p95": round(percentile(durations, 0.95), 3),
        "max": round(max(durations), 3),
    }


def collect(runs: Iterable[dict], task_instances: Iterable[dict]) -> dict[str, DagHealth]:
    dags: dict[str, DagHealth] = {}
    for run in runs:
        dag = dags.setdefault(run["dag_id"], DagHealth(run["dag_id"]))
        dag.run_states[run["state"]] += 1
        if run["state"] in ("success", FAILED) and run.get("duration") is not None:
            dag.run_durations.append(run["duration"])
    for ti in task_instances:
        dag = dags.setdefault(ti["dag_id"], DagHealth(ti["dag_id"]))
        dag.task_states[ti["state"] or "none"] += 1
        if ti.get("duration") is not None:
            dag.task_durations[ti["task_id"]].append(ti["duration"])
    return dags


def health(client: AirflowClient, since: datetime, dag_ids: list[str], slowest: int) -> list[dict]:
    params = {"run_after_gte": since.isoformat()}
    runs: list[dict] = []
    task_instances: list[dict] = []
    for dag_id in dag_ids or ["~"]:
        quoted = urllib.parse.quote(dag_id, safe="~")
        # The API's cursor, so runs that start meanwhile never shift a page.
        runs += client.paged(f"/api/v2/dags/{quoted}/dagRuns", "dag_runs", params, by_cursor=True)
        task_instances += client.paged(
            f"/api/v2/dags/{quoted}/dagRuns/~/taskInstances", "task_instances", params, by_cursor=True
        )
    dags = collect(runs, task_instances)
    for dag_id in dag_ids:  # asked for by name: reported even without a run in the window
        dags.setdefault(dag_id, DagHealth(dag_id))
    reports = [dag.report(slowest) for dag in dags.values()]
    reports.sort(key=lambda dag: (-dag["failed_runs"], -dag["failed_task_instances"], dag["dag_id"]))
    return reports


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    if value < 3600:
        return f"{int(value // 60)}m{int(value % 60):02d}s"
    return f"{int(value // 3600)}h{int(value % 3600 // 60):02d}m"


def states(by_state: dict[str, int]) -> str:
    return ", ".join(f"{state} {count}" for state, count in sorted(by_state.items(), key=lambda item: -item[1])) or "-"


def table(rows: list[list[str]], right_aligned: set[int]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if column in right_aligned else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def render_text(reports: list[dict], hours: float, url: str) -> str:
    lines = [f"DAG health over the last {hours:g} h, from {url}", ""]
    if not reports:
        return "\n".join([*lines, "No DAG runs in this window."])
    rows = [["DAG", "RUNS", "FAILED", "RUN P50", "RUN P95", "RUN STATES", "TASKS", "FAILED", "TASK STATES"]]
    for dag in reports:
        durations = dag["run_duration_seconds"] or {}
        rows.append(
            [
                dag["dag_id"],
                str(dag["runs"]),
                str(dag["failed_runs"]),
                seconds(durations.get("p50")),
                seconds(durations.get("p95")),
                states(dag["runs_by_state"]),
                str(dag["task_instances"]),
                str(dag["failed_task_instances"]),
                states(dag["task_instances_by_state"]),
            ]
        )
    lines += table(rows, right_aligned={1, 2, 3, 4, 6, 7})
    slow = [dag for dag in reports if dag["slowest_tasks"]]
    if slow:
        lines += ["", "Slowest tasks (p95 of their durations):"]
        rows = [
            [dag["dag_id"], ", ".join(f"{task['task_id']} {seconds(task['p95'])}" for task in dag["slowest_tasks"])]
            for dag in slow
        ]
        lines += ["  " + line for line in table(rows, right_aligned=set())]
    return "\n".join(lines)


def explain(error: ApiError) -> str:
    if isinstance(error, AuthenticationError):
        return (
            "the Airflow API rejected the credentials: set a valid AIRFLOW_API_TOKEN, or AIRFLOW_API_USERNAME "
            f"and AIRFLOW_API_PASSWORD ({error})"
        )
    if isinstance(error, PermissionDenied):
        return f"the user may not read DAG runs and task instances; give it a role that may ({error})"
    if isinstance(error, Unreachable):
        return f"{error}. Is the api-server running, and does AIRFLOW_API_URL point at it?"
    return str(error)


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.dag_health", description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24, help="lookback window in hours (default 24)")
    parser.add_argument("--dag-id", action="append", default=[], help="only this DAG; repeat for more")
    parser.add_argument("--slowest", type=int, default=3, help="slowest tasks to list per DAG (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines instead of a table")
    args = parser.parse_args(argv)
    if args.hours <= 0 or args.slowest < 0:
        parser.error("--hours must be positive and --slowest not negative")
    environ = dict(os.environ if environ is None else environ)
    since = datetime.now(UTC) - timedelta(hours=args.hours)
    try:
        client = AirflowClient.from_environment(environ)
        reports = health(client, since, args.dag_id, args.slowest)
    except ApiError as error:
        print(f"dag_health: {explain(error)}", file=sys.stderr)
        return 1
    url = client.base_url
    if args.json:
        document = {"api_url": url, "lookback_hours": args.hours, "since": since.isoformat(), "dags": reports}
        print(json.dumps(document, indent=2))
    else:
        print(render_text(reports, args.hours, url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
