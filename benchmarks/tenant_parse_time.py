"""Parse time of dags/tenant_pipelines.py at 10, 100 and 500 tenants, beside a one-DAG baseline.

    .cache/dev-venv/bin/python benchmarks/tenant_parse_time.py [--project PATH] [--runs 7]

Needs a Python with the project's requirements (Airflow 3.3). Without --project it bakes the
default project with cookiecutter into a temporary folder. The tenant files, 3 tables per
tenant, are written into temporary copies of the project's dags/ folder.

Each parse is measured the way the dag-processor does it: a process with Airflow loaded
pre-imports the airflow.* modules the DAG file names, freezes its garbage collector, then
forks a child that parses the file with DagBag. The child reports DagBag's own duration for
the file (what `airflow dags report` prints) and the time to serialize its DAGs, the
processor's next step. Baseline: the one-DAG dags/example_safe_taskflow.py, parsed the same
way in the same run. Prints a Markdown table in milliseconds: medians, and the parse range.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
TENANT_COUNTS = (10, 100, 500)
TABLES = ("orders", "customers", "invoices")
SCHEDULES = ("@daily", "0 3 * * *", "30 */6 * * *", "@hourly")


def bake(output: Path) -> Path:
    cookiecutter = shutil.which("cookiecutter") or TEMPLATE_DIR / ".cache" / "tools" / "bin" / "cookiecutter"
    subprocess.run(
        [str(cookiecutter), "--no-input", "-o", str(output), str(TEMPLATE_DIR)], check=True, stdout=subprocess.DEVNULL
    )
    (project,) = output.iterdir()
    return project


def tenants_yaml(count: int) -> str:
    lines = ["tenants:"]
    for number in range(count):
        lines += [
            f"  - name: t{number:04d}",
            f"    owner: team-{number % 12}",
            f'    schedule: "{SCHEDULES[number % len(SCHEDULES)]}"',
            f"    tables: [{', '.join(TABLES)}]",
        ]
    return "\n".join(lines) + "\n"


def point_airflow_at(project: Path, home: Path) -> None:
    """Airflow reads these once, when imported, and puts plugins/ on sys.path then."""
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW_CONFIG": str(project / "config" / "airflow.cfg"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )


def parse_in_child(dag_file: Path, results) -> None:
    # Airflow logs to stdout; only the parent's table belongs there. Errors come back through the pipe.
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, sys.stdout.fileno())
    os.dup2(quiet, sys.stderr.fileno())
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(dag_folder=dag_file, load_op_links=False)
    if bag.import_errors:
        results.send({"error": "\n".join(bag.import_errors.values())})
        return
    (stat,) = bag.dagbag_stats
    start = time.perf_counter()
    for dag in bag.dags.values():
        DagSerialization.to_dict(dag)
    results.send(
        {
            "parse": stat.duration.total_seconds() * 1000,
            "serialize": (time.perf_counter() - start) * 1000,
            "dags": stat.dag_num,
            "tasks": stat.task_num,
        }
    )


def measure(dag_file: Path, runs: int) -> list[dict]:
    from airflow.utils.file import iter_airflow_imports

    # What the dag-processor does before it forks a parsing child ([dag_processor] parsing_pre_import_modules).
    for module in iter_airflow_imports(str(dag_file)):
        __import__(module)
    # As the dag-processor does before its parsing loop: the children's garbage collector then
    # skips everything inherited from this process.
    gc.freeze()
    fork = multiprocessing.get_context("fork")
    samples = []
    for _ in range(runs):
        receive, send = fork.Pipe(duplex=False)
        child = fork.Process(target=parse_in_child, args=(dag_file, send))
        child.start()
        send.close()  # so recv() raises EOFError, not hangs, if the child dies without answering
        sample = receive.recv()
        child.join()
        if "error" in sample:
            sys.exit(f"{dag_file} failed to parse:\n{sample['error']}")
        samples.append(sample)
    return samples


def table_row(name: str, tenants: str, samples: list[dict]) -> str:
    parse = [sample["parse"] for sample in samples]
    serialize = statistics.median(sample["serialize"] for sample in samples)
    return (
        f"| {name} | {tenants} | {samples[0]['dags']} | {samples[0]['tasks']} | {statistics.median(parse):.0f} "
        f"| {min(parse):.0f}-{max(parse):.0f} | {serialize:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", type=Path, help="a baked project; default: bake one into a temp folder")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tenant-parse-") as scratch:
        scratch = Path(scratch)
        project = args.project.resolve() if args.project else bake(scratch / "bake")
        baseline = project / "dags" / "example_safe_taskflow.py"
        if not baseline.exists():
            sys.exit(f"{baseline} is missing: bake the project with include_examples=yes")
        variants = {}
        for count in TENANT_COUNTS:
            dags = scratch / f"dags_{count}"
            shutil.copytree(project / "dags", dags)
            (dags / "config" / "tenants.yaml").write_text(tenants_yaml(count))
            variants[count] = dags / "tenant_pipelines.py"
        point_airflow_at(project, scratch / "airflow_home")
        # The dag-processor has these loaded before it forks, so no parsing child pays for them.
        import airflow.dag_processing.processor  # noqa: F401

        rows = [table_row("example_safe_taskflow.py (baseline)", "-", measure(baseline, args.runs))]
        for count, dag_file in variants.items():
            rows.append(table_row("tenant_pipelines.py", str(count), measure(dag_file, args.runs)))
    print(f"| file | tenants | DAGs | tasks | parse ms, median of {args.runs} | parse ms, min-max | serialize ms |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
