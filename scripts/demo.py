"""`make demo`: bake the default project and run one of its DAGs end to end.

The DAG runs with `airflow dags test` on the embedded default, SQLite and LocalExecutor,
through the generated project's own Makefile, so the demo proves what a new user gets. Its
full output (every log line and return value) goes to a file; the terminal gets a summary.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
DEMO_DAG = "example_safe_taskflow"


def demo_python_version() -> str:
    """This interpreter's version when the template offers it, so no other Python is needed."""
    choices = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())["python_version"]
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    return running if running in choices else choices[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=TEMPLATE_DIR / ".demo")
    args = parser.parse_args()

    output_dir = args.output_dir.resolve()
    shutil.rmtree(output_dir, ignore_errors=True)
    output_dir.mkdir(parents=True)
    print(f"==> Baking the default project into {output_dir}")
    project = Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            output_dir=str(output_dir),
            extra_context={"python_version": demo_python_version()},
        )
    )

    output = project / ".airflow" / "demo.log"
    output.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    output.touch(mode=0o600)  # like the rest of .airflow/: owner-only
    output.chmod(0o600)
    print(f"==> Installing it and running {DEMO_DAG} (make dag-test); full output in {output}", flush=True)
    with output.open("w") as log:
        result = subprocess.run(
            ["make", "-C", str(project), "dag-test", f"DAG={DEMO_DAG}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    text = output.read_text(errors="replace")
    succeeded = re.search(rf"DagRun Finished: dag_id={DEMO_DAG}, .*state=success", text)
    if result.returncode == 0 and not succeeded:
        result.returncode = 1  # `dags test` can exit 0 on a failed run
    if result.returncode != 0:
        print("\n".join(text.splitlines()[-40:]), file=sys.stderr)
        print(f"\nThe demo DAG failed (exit {result.returncode}): the end of {output} is above.", file=sys.stderr)
        return result.returncode

    print(summary(text, output))
    print(
        f"    Project: {project}\n"
        f"    Next:    cd {project}\n"
        "             make run     # the whole Airflow on http://127.0.0.1:8080, every example ready; Ctrl-C stops it\n"
        "             make test    # the project's DAG integrity, policy and config tests"
    )
    return 0


def summary(text: str, output: Path) -> str:
    """What ran and how it ended, from `airflow dags test`'s output."""
    tasks = list(dict.fromkeys(re.findall(r"\[DAG TEST\] end task task_id=(\S+)", text)))
    finished = re.search(r"DagRun Finished: dag_id=(\S+), .*?run_id=(\S+), .*?state=(\w+)", text)
    state = finished[3] if finished else "unknown"
    return (
        f"\n==> {DEMO_DAG} finished with state {state} on SQLite with LocalExecutor\n"
        f"    Run:     {finished[2].rstrip(',') if finished else '?'}\n"
        f"    Tasks:   {', '.join(tasks) or 'none'} (each ran once, in this process)\n"
        f"    Output:  {output} (task logs and return values)"
    )


if __name__ == "__main__":
    sys.exit(main())
