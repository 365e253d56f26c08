"""`make run`'s supervisor (scripts/run_local/ in a baked project) on its own, without Airflow:
what it stops when a component stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from test_services import PARENT, alive

# Drives one component as make run's stop does: SIGTERM to its group, a short grace, then the kill.
# argv: the component's command, its log, and a pid to add to the sessions it led (or 0).
STOP_A_COMPONENT = """
import sys, time
from pathlib import Path
from scripts.run_local.components import Component

component = Component("scheduler", [sys.executable, "-c", sys.argv[1]], {}, Path(sys.argv[2]))
component.start()
if int(sys.argv[3]):
    component.process.wait()
    component.sessions.add(int(sys.argv[3]))
else:
    deadline = time.monotonic() + 30
    while not [line for line in Path(sys.argv[2]).read_text().splitlines() if line.isdigit()]:
        assert time.monotonic() < deadline, "the component never printed its child's pid"
        time.sleep(0.05)
component.signal_group(15)
component.wait_stopped(time.monotonic() + 1)
"""


def stop_a_component(project, command: str, log, stranger: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", STOP_A_COMPONENT, command, str(log), str(stranger)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stopping_a_component_stops_a_task_process_in_a_group_of_its_own(baked, tmp_path):
    # PARENT ignores SIGTERM and forks a child that moves to a process group of its own, as
    # Airflow 3's task supervisor does with each task: the component's group does not hold it.
    log = tmp_path / "scheduler.log"
    result = stop_a_component(baked("local").path, PARENT, log)
    child = int(next(line for line in log.read_text().splitlines() if line.isdigit()))
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "scheduler did not stop within" in result.stdout
        assert not alive(child), "a task process outlived its component"
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_session_whose_leader_pid_names_a_stranger_is_left_alone(baked, tmp_path):
    # A component restarted earlier led a session whose leader has exited; the pid now leads an
    # unrelated session of its own.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        result = stop_a_component(baked("local").path, "pass", tmp_path / "scheduler.log", stranger.pid)
        assert result.returncode == 0, result.stdout + result.stderr
        assert stranger.poll() is None, "make run killed a process it did not start"
    finally:
        stranger.kill()
        stranger.wait()


def test_a_failure_is_explained_by_its_error_line_not_by_the_last_line(baked, tmp_path):
    # What Airflow 3.3's api-server logs when its port is taken, then its shutdown.
    log = tmp_path / "api-server.log"
    log.write_text(
        "2026-12-06T22:52:29.738203Z [error    ] [Errno 98] error while attempting to bind on address "
        "('127.0.0.1', 8080): address already in use [uvicorn.error] loc=server.py:190\n"
        "2026-12-06T22:52:29.738569Z [info     ] Application shutdown complete. [uvicorn.error] loc=on.py:76\n"
    )
    explain = "import sys; from pathlib import Path; from scripts.run_local.components import last_error_line; "
    explain += "print(last_error_line(Path(sys.argv[1])))"
    result = subprocess.run(
        [sys.executable, "-c", explain, str(log)], cwd=baked("local").path, capture_output=True, text=True, timeout=60
    )
    assert "address already in use" in result.stdout, result.stdout + result.stderr
