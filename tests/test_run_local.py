"""`make run`'s supervisor (scripts/run_local/ in a baked project) on its own, without Airflow:
what it stops when a component stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from services import free_port, poll
from test_services import alive

# A parent that ignores SIGTERM, and a child that leaves the parent's process group (as Airflow
# 3's task supervisor moves each task) or its session (as BashOperator starts its shell).
LEAVING_PARENT = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = os.fork()
if child == 0:
    os.setsid() if sys.argv[1] == "session" else os.setpgid(0, 0)
    print(os.getpid(), flush=True)
    time.sleep(600)
    os._exit(0)
time.sleep(600)
"""

# Drives one component as make run's stop does: SIGTERM to it, a short grace, then the kill.
# argv: the component's command (a Python program and its one argument), its log, and a pid to
# add to the sessions it led (or 0).
STOP_A_COMPONENT = """
import sys, time
from pathlib import Path
from scripts.run_local.components import Component

program, argument, log, stranger = sys.argv[1:]
component = Component("scheduler", [sys.executable, "-c", program, argument], {}, Path(log))
component.start()
if int(stranger):
    component.process.wait()
    component.sessions.add(int(stranger))
else:
    deadline = time.monotonic() + 30
    while not [line for line in Path(log).read_text().splitlines() if line.isdigit()]:
        assert time.monotonic() < deadline, "the child never said it had moved"
        time.sleep(0.05)
component.signal(15)
component.wait_stopped(time.monotonic() + 1)
"""


def stop_a_component(project, program: str, argument: str, log, stranger: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", STOP_A_COMPONENT, program, argument, str(log), str(stranger)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("leaves", ["group", "session"])
def test_stopping_a_component_stops_a_child_that_left_its_group_or_session(baked, tmp_path, leaves):
    log = tmp_path / "scheduler.log"
    result = stop_a_component(baked("local").path, LEAVING_PARENT, leaves, log)
    child = int(next(line for line in log.read_text().splitlines() if line.isdigit()))
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "scheduler did not stop within" in result.stdout
        assert poll(lambda: not alive(child), f"the end of the child that left its {leaves}", timeout=30)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_session_whose_leader_pid_names_a_stranger_is_left_alone(baked, tmp_path):
    # A component restarted earlier led a session whose leader has exited; the pid now leads an
    # unrelated session of its own.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        result = stop_a_component(baked("local").path, "pass", "", tmp_path / "scheduler.log", stranger.pid)
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


# Checks make run's port probe for one API_HOST, as make run's command line passes it.
CHECK_API_PORT = """
import argparse, os, sys
from scripts.run_local.common import Failed
from scripts.run_local.supervisor import Supervisor

host, port = sys.argv[1], int(sys.argv[2])
try:
    Supervisor(argparse.Namespace(host=host, port=port)).check_api_port()
    print("free")
except Failed as error:
    print(error)
"""


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("::1", "free"),  # IPv6, which uvicorn serves too
        ("192.0.2.1", "the api-server cannot listen on API_HOST=192.0.2.1"),  # not this machine's
    ],
)
def test_the_port_probe_binds_as_uvicorn_does_and_names_the_setting(baked, tmp_path, host, expected):
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", CHECK_API_PORT, host, str(free_port())],
        cwd=baked("local").path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.startswith(expected), result.stdout + result.stderr


def test_saying_something_to_a_closed_terminal_does_not_stop_make_run(baked):
    # Ctrl-C on `make run | tee log` also ends tee; a closed terminal ends the same way. What make
    # run says then must not raise, or it would leave its components running.
    program = "import os, sys\nfrom scripts.run_local.common import say\nos.close(1)\nsay('stopping')\n"
    program += "sys.stderr.write('went on')\n"
    result = subprocess.run([sys.executable, "-c", program], cwd=baked("local").path, capture_output=True, text=True)
    assert "went on" in result.stderr, result.stderr
