"""The README's first command, and the generated project's `make run`, on a fresh bake.

`scripts/demo.py` (what `make demo` runs) bakes the default project and runs a DAG through
the project's own Makefile. `make run` must serve the API and stop every process it
started on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import TEMPLATE_DIR
from services import free_port, wait_for_url

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo")
    result = subprocess.run(
        [sys.executable, str(TEMPLATE_DIR / "scripts" / "demo.py"), "--output-dir", str(output)],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    projects = [path for path in output.iterdir() if path.is_dir()]
    return result, projects


def test_demo_bakes_the_default_project_and_runs_a_dag(demo):
    result, projects = demo
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [project.name for project in projects] == ["data_platform_airflow"]
    assert "DagRun Finished: dag_id=example_safe_taskflow" in result.stdout + result.stderr
    assert "state=success" in result.stdout + result.stderr
    assert f"Project: {projects[0]}" in result.stdout
    assert (projects[0] / ".airflow" / "airflow.db").exists(), "the run must use the embedded SQLite database"


def processes_with(marker: str) -> list[int]:
    """PIDs whose environment carries the marker: everything `make run` started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_make_run_serves_the_api_and_ctrl_c_stops_every_process(demo, tmp_path):
    _, projects = demo
    project = projects[0]
    marker = f"RUN_LOCAL_TEST_{uuid.uuid4().hex}"
    port = free_port()
    env = {
        **os.environ,
        marker: "1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
    }
    log = (tmp_path / "make-run.log").open("w")
    process = subprocess.Popen(
        ["make", "-C", str(project), "run"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # make leads a group, like a shell's foreground job
    )
    try:
        version = wait_for_url(
            f"http://127.0.0.1:{port}/api/v2/version",
            process,
            timeout=300,
            exited=lambda: "make run exited before the API came up",
        )
        assert '"version":"3.3.2"' in version.replace(" ", "")
        assert len(processes_with(marker)) > 3, "api-server, scheduler, dag-processor and triggerer"

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground group
        process.wait(timeout=60)
        deadline = time.monotonic() + 45
        while processes_with(marker) and time.monotonic() < deadline:
            time.sleep(1)
        assert processes_with(marker) == [], "processes outlived Ctrl-C"
    finally:
        for pid in processes_with(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


@pytest.mark.parametrize("target", ["test", "lint", "test-dags"])
def test_generated_makefile_targets_pass(demo, target):
    _, projects = demo
    result = subprocess.run(
        ["make", "-C", str(projects[0]), target], capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if target == "test":
        assert " passed" in result.stdout and "failed" not in result.stdout
