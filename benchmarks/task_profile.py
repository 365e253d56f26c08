"""Where a task's CPU goes: py-spy on every Airflow process while 100 mapped no-op tasks run.

    PYENV_VERSION=... .cache/tools/bin/python benchmarks/task_profile.py [--executor local] [--rate 100]

It bakes the project, adds executor_tuning.py's benchmark DAGs, starts the same stack as that
script with the project's tuned config (and a Celery worker for --executor celery), runs
`bench_mapped` once to warm up, then samples the api-server, scheduler, dag-processor,
triggerer (and worker) with `py-spy record --subprocesses`, so forked executor workers, task
supervisors and task processes are sampled too, while `bench_mapped` runs again. It samples
with `--gil`, only the thread that holds the GIL, so a thread waiting on a queue or a socket is
not counted as work. Even so, py-spy's sample counts add up to several times the CPU seconds the
processes used (executor_tuning.py measures those from /proc), so the report gives shares of
samples, which say where the time goes, not how much there is.

Prints, per kind of process, its share of the samples, the packages where its time is spent
(self time), and the Airflow functions that hold the most of it (inclusive). `--raw DIR`
reports on an earlier recording again.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TEMPLATE_DIR / "tests"))
sys.path.insert(0, str(TEMPLATE_DIR / "benchmarks"))
from airflow_stack import airflow_stack  # noqa: E402
from executor_tuning import add_bench_dags  # noqa: E402
from helpers import VARIANTS, BakedProject, bake  # noqa: E402
from services import postgres_server, redis_server  # noqa: E402

TASKS = 100  # bench_mapped's mapped task instances
PROCESS_FRAME = re.compile(r'process (\d+):"(.*)"')
FRAME_FILE = re.compile(r"^(?P<function>.*) \((?P<file>.*):\d+\)$")


def kind_of(component: str, command: str, depth: int) -> str:
    """A readable name for a sampled process: the component, and for its descendants their title."""
    if depth == 1:
        return component
    title = re.sub(r"\S*/bin/", "", command)
    title = re.sub(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", "<task>", title)
    title = re.sub(r"(dag_id|task_id|run_id|ti|id)[=:]\S+", "", title)
    title = re.sub(r"\d+", "N", title).strip()
    return f"{component} > {title[:60]}"


def package_of(frame: str) -> str:
    match = FRAME_FILE.match(frame)
    path = match["file"] if match else frame
    if path.startswith("<frozen importlib"):
        return "imports (importlib)"
    parts = path.split("/")
    if parts[0] == "airflow":
        return "/".join(parts[:3]).removesuffix(".py")
    return parts[0].removesuffix(".py")


def function_of(frame: str) -> str:
    match = FRAME_FILE.match(frame)
    return f"{match['function']} ({match['file']})" if match else frame


def read_samples(path: Path, component: str) -> list[tuple[str, str, list[str], int]]:
    """(kind, pid, code frames root first, count) for each stack in py-spy's raw output."""
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        processes = [PROCESS_FRAME.match(frame) for frame in frames if frame.startswith("process ")]
        code = [frame for frame in frames if not frame.startswith("process ")]
        inner = processes[-1] if processes else None
        kind = kind_of(component, inner[2] if inner else component, len(processes))
        samples.append((kind, inner[1] if inner else "?", code, int(count)))
    return samples


def read_raw(folder: Path) -> list[tuple[str, str, list[str], int]]:
    """Every component's samples: py-spy wrote one <component>.txt per sampled process group."""
    return [sample for path in sorted(folder.glob("*.txt")) for sample in read_samples(path, path.stem)]


def report(samples: list[tuple[str, str, list[str], int]], rate: int, top: int) -> str:
    by_kind: dict[str, list] = defaultdict(list)
    for sample in samples:
        by_kind[sample[0]].append(sample)
    total = sum(sample[3] for sample in samples)
    lines = [
        f"{total} samples at {rate} a second while {TASKS} tasks ran.",
        "",
        "| process | processes | share of samples |",
        "|---|---|---|",
    ]
    ranked = sorted(by_kind.items(), key=lambda item: -sum(sample[3] for sample in item[1]))
    for kind, kind_samples in ranked:
        count = sum(sample[3] for sample in kind_samples)
        pids = len({sample[1] for sample in kind_samples})
        lines.append(f"| {kind} | {pids} | {count / total:.1%} |")
    for kind, kind_samples in ranked:
        count = sum(sample[3] for sample in kind_samples)
        if count / total < 0.03:
            continue
        self_time, inclusive = Counter(), Counter()
        for _, _, code, weight in kind_samples:
            if code:
                self_time[package_of(code[-1])] += weight
            for function in {function_of(frame) for frame in code if "airflow/" in frame}:
                inclusive[function] += weight
        lines += ["", f"**{kind}** ({count / total:.0%}). Self time by package: "]
        lines[-1] += ", ".join(f"{package} {weight / count:.0%}" for package, weight in self_time.most_common(top))
        lines += ["", "| Airflow function (inclusive) | share |", "|---|---|"]
        # Frames on (nearly) every stack, such as main(), say nothing: show what splits the time.
        telling = [(function, weight) for function, weight in inclusive.most_common() if weight < 0.9 * count]
        lines += [f"| `{function}` | {weight / count:.0%} |" for function, weight in telling[:top]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executor", default="local", choices=["local", "celery"])
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--dag-files", choices=["per-dag", "one"], default="per-dag", help="as executor_tuning.py")
    parser.add_argument("--raw", type=Path, help="report on the py-spy output in this folder instead of recording")
    args = parser.parse_args()
    if args.raw:
        print(report(read_raw(args.raw), args.rate, args.top))
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        sys.exit("task_profile.py needs py-spy: pip install py-spy (it is in requirements-dev.txt)")
    scratch = Path(tempfile.mkdtemp(prefix=f"profile-{args.executor}-"))
    project = BakedProject(bake(scratch, **VARIANTS[args.executor]), VARIANTS[args.executor])
    add_bench_dags(project.path / "dags", args.dag_files)
    home = scratch / "home"
    home.mkdir()
    with postgres_server(("profile",)) as urls, redis_server() as broker:
        env = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["profile"].replace("postgresql://", "postgresql+psycopg://"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + urls["profile"],
        }
        with airflow_stack(project, home, env) as stack:
            if args.executor == "celery":
                stack.start("worker", "celery", "worker")
            stack.wait_for_dags({"bench_mapped"})
            assert stack.wait_for_run("bench_mapped", stack.trigger("bench_mapped", None)) == "success"
            outputs = {name: scratch / f"{name}.txt" for name in stack.processes}
            spies = [
                subprocess.Popen(
                    [py_spy, "record", "--pid", str(process.pid), "--subprocesses", "--nonblocking", "--gil"]
                    + ["--format", "raw", "--rate", str(args.rate), "--output", str(outputs[name])],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for name, process in stack.processes.items()
            ]
            try:
                state = stack.wait_for_run("bench_mapped", stack.trigger("bench_mapped", None))
            finally:
                for spy in spies:
                    spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
                for spy in spies:
                    spy.wait(timeout=60)
            assert state == "success", state
    print(f"py-spy's raw output: {scratch}", file=sys.stderr)
    print(report(read_raw(scratch), args.rate, args.top))


if __name__ == "__main__":
    main()
