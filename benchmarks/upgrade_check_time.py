"""Wall time of `make upgrade-check` on 500 generated Airflow 2 DAG files, beside two baselines.

    .cache/tools/bin/python benchmarks/upgrade_check_time.py --python .cache/venvs/<key>/bin/python

--python is an interpreter with a baked project's requirements (Airflow 3.3, ruff), such as a
venv the Airflow test tier cached in .cache/venvs/. Without --project it bakes the default
project into a temporary folder. The generated repository is a realistic mix: 40% DAGs already
on Airflow 3, 30% on deprecated paths that still import, 20% that ruff's safe fixes repair
(schedule_interval, DummyOperator), 10% that need a person (metadata-DB access, SLAs,
execution_date, airflow.contrib); each has 10 tasks, and there is an old airflow.cfg.

In one run, on the same files:
- upgrade-check on every core (what `make upgrade-check` does), and with --jobs 1;
- the naive design, one fresh Python process per DAG file importing Airflow and the file: timed on
  a sample of files, one at a time, then scaled to all files spread over every core.
Each run reports wall time and CPU seconds of its whole process tree. The fork server that parses
the DAG files outlives the tool by a moment, so this script makes itself their subreaper
(prctl PR_SET_CHILD_SUBREAPER, Linux) and reaps it: its CPU time, and that of every parsing
child, is counted. CPU seconds hold steady on a shared box; wall time does not, so the machine's
load average is printed with the table.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
KINDS = (("clean", 40), ("deprecated", 30), ("auto_fix", 20), ("manual", 10))

HEADERS = {
    "clean": (
        "import pendulum\n"
        "from airflow.providers.standard.operators.bash import BashOperator\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "from airflow.sdk import DAG\n\n"
        "with DAG(dag_id='bench_{n}', schedule='@daily', start_date=pendulum.datetime(2024, 1, 1, tz='UTC'),\n"
        "         catchup=False, tags=['bench']):\n"
        "    start = EmptyOperator(task_id='start')\n"
    ),
    "deprecated": (
        "from datetime import datetime\n\n"
        "from airflow import DAG\n"
        "from airflow.operators.bash import BashOperator\n"
        "from airflow.operators.empty import EmptyOperator\n\n"
        "with DAG(dag_id='bench_{n}', schedule='@daily', start_date=datetime(2024, 1, 1), catchup=False):\n"
        "    start = EmptyOperator(task_id='start')\n"
    ),
    "auto_fix": (
        "from datetime import datetime\n\n"
        "from airflow import DAG\n"
        "from airflow.operators.bash import BashOperator\n"
        "from airflow.operators.dummy import DummyOperator\n\n"
        "with DAG(dag_id='bench_{n}', schedule_interval='@daily', start_date=datetime(2024, 1, 1), catchup=False):\n"
        "    start = DummyOperator(task_id='start')\n"
    ),
    "manual": (
        "from datetime import datetime, timedelta\n\n"
        "from airflow import DAG\n"
        "from airflow.contrib.operators.ssh_operator import SSHOperator\n"
        "from airflow.operators.bash import BashOperator\n"
        "from airflow.operators.empty import EmptyOperator\n"
        "from airflow.utils.session import create_session\n\n\n"
        "def purge(execution_date, **context):\n"
        "    with create_session() as session:\n"
        "        session.execute('delete from xcom')\n\n\n"
        "with DAG(dag_id='bench_{n}', schedule='@daily', start_date=datetime(2024, 1, 1), catchup=False,\n"
        "         default_args={{'sla': timedelta(hours=1)}}):\n"
        "    start = EmptyOperator(task_id='start')\n"
    ),
}
TASK = (
    "    start >> BashOperator(task_id='step_{step}', pool='default_pool',\n"
    "                          bash_command='run --day {{{{ ds | default(dag_run.run_after | ds) }}}} --part {step}')\n"
)
OLD_CFG = "[core]\nexecutor = CeleryExecutor\n\n[scheduler]\nmax_threads = 4\n\n[webserver]\nworkers = 4\n"
NAIVE_PROBE = "import sys\nfrom airflow.dag_processing.dagbag import DagBag\nDagBag(dag_folder=sys.argv[1])\n"


def bake(output: Path) -> Path:
    cookiecutter = shutil.which("cookiecutter") or TEMPLATE_DIR / ".cache" / "tools" / "bin" / "cookiecutter"
    subprocess.run(
        [str(cookiecutter), "--no-input", "-o", str(output), str(TEMPLATE_DIR)], check=True, stdout=subprocess.DEVNULL
    )
    (project,) = output.iterdir()
    return project


def write_repository(root: Path, files: int) -> list[Path]:
    dags = root / "dags"
    dags.mkdir(parents=True)
    (root / "airflow.cfg").write_text(OLD_CFG)
    paths, number = [], 0
    for kind, share in KINDS:
        for _ in range(files * share // 100):
            text = HEADERS[kind].format(n=number) + "".join(TASK.format(step=step) for step in range(10))
            path = dags / f"bench_{kind}_{number:04d}.py"
            path.write_text(text)
            paths.append(path)
            number += 1
    return paths


def airflow_env(project: Path, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(project / "config" / "airflow.cfg"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__SECRETS__BACKEND": "",
        "PYTHONPATH": str(project),
    }


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed: this benchmark needs Linux")


def cpu_seconds() -> float:
    """CPU time of every descendant reaped so far, orphans included (they are ours to reap)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(command: list[str], **kwargs) -> tuple[float, float]:
    """(wall s, CPU s) of a command and everything it started."""
    cpu, started = cpu_seconds(), time.perf_counter()
    subprocess.run(command, check=True, **kwargs)
    wall = time.perf_counter() - started
    return wall, cpu_seconds() - cpu


def timed_check(python: str, project: Path, repo: Path, jobs: int, scratch: Path) -> tuple[float, float, dict]:
    output = scratch / f"report-{jobs}"
    command = [python, "-m", "scripts.upgrade_check", "check", "--src", str(repo), "--jobs", str(jobs)]
    command += ["--output", str(output), "--project", str(project)]
    env = airflow_env(project, scratch / f"home-{jobs}")
    wall, cpu = measured(command, cwd=project, env=env, stdout=subprocess.DEVNULL)
    return wall, cpu, json.loads((output / "report.json").read_text())["summary"]


def naive_per_file(python: str, project: Path, sample: list[Path], scratch: Path) -> tuple[float, float]:
    """(wall s, CPU s) per file when each file gets a fresh interpreter that imports Airflow itself."""
    env = airflow_env(project, scratch / "home-naive")
    runs = [measured([python, "-c", NAIVE_PROBE, str(path)], env=env, capture_output=True) for path in sample]
    return statistics.median(wall for wall, _ in runs), statistics.median(cpu for _, cpu in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="an interpreter with the project's requirements")
    parser.add_argument("--project", type=Path, help="a baked project; default: bake one into a temp folder")
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--naive-sample", type=int, default=5, help="files timed one interpreter each")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    become_subreaper()
    with tempfile.TemporaryDirectory(prefix="upgrade-check-bench-") as scratch:
        scratch = Path(scratch)
        project = args.project.resolve() if args.project else bake(scratch / "bake")
        repo = scratch / "airflow2_repo"
        paths = write_repository(repo, args.files)
        load = os.getloadavg()[0]
        parallel_wall, parallel_cpu, summary = timed_check(args.python, project, repo, cores, scratch)
        serial_wall, serial_cpu, _ = timed_check(args.python, project, repo, 1, scratch)
        sample = paths[:: max(1, len(paths) // args.naive_sample)][: args.naive_sample]
        naive_wall, naive_cpu = naive_per_file(args.python, project, sample, scratch)
        end_load = os.getloadavg()[0]
    print(f"{len(paths)} DAG files, {cores} cores, load average {load:.1f} at the start and {end_load:.1f} at the end.")
    print(f"Report: {summary['line']}\n")
    print("| run | wall s | CPU s | CPU ms per file |")
    print("|---|---|---|---|")
    rows = (
        (f"upgrade-check, {cores} imports at a time (make upgrade-check)", parallel_wall, parallel_cpu),
        ("upgrade-check, --jobs 1", serial_wall, serial_cpu),
        (
            f"naive: a fresh interpreter per file, {cores} at a time (from {len(sample)} files, scaled)",
            naive_wall * len(paths) / cores,
            naive_cpu * len(paths),
        ),
    )
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.0f} | {cpu:.0f} | {cpu * 1000 / len(paths):.0f} |")


if __name__ == "__main__":
    main()
