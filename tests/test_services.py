"""The harness's own promise: a stopped server or Airflow component leaves no process behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from services import kill_family, poll, proc_stat, process_family, stop_process_group

# A parent that ignores SIGTERM and a child in a process group of its own, as Airflow 3's task
# supervisor makes for each task: a signal to the parent's group reaches neither in time.
PARENT = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = os.fork()
if child == 0:
    os.setpgid(0, 0)
    time.sleep(600)
    os._exit(0)
print(child, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        return proc_stat(pid).state != "Z"
    except FileNotFoundError:
        return False


def start_parent() -> tuple[subprocess.Popen, int]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True)
    child = int(parent.stdout.readline())
    poll(lambda: os.getpgid(child) == child, "the child's own process group", timeout=30, interval=0.05)
    return parent, child


def test_stopping_a_group_also_stops_a_descendant_in_its_own_group():
    parent, child = start_parent()
    try:
        assert set(process_family(parent.pid)) == {parent.pid, child}
        stop_process_group(parent, grace=1)
        assert poll(lambda: not alive(child), "the child's end", timeout=30, interval=0.05)
    finally:
        if alive(child):
            os.kill(child, 9)
        parent.stdout.close()


def test_a_pid_that_now_names_another_process_is_left_alone():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        kill_family({sleeper.pid: "0"})  # recorded with another start time: a reused pid
        time.sleep(0.2)
        assert sleeper.poll() is None
        kill_family(process_family(sleeper.pid))
        assert sleeper.wait(timeout=30) == -9
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_command_name_with_spaces_and_parentheses_is_read_past(tmp_path):
    # /proc/<pid>/stat puts the command name in parentheses, unescaped: "1234 (a) b (c) S 1 ...".
    odd_name = tmp_path / "a) b (c"
    shutil.copy(shutil.which("sleep"), odd_name)
    sleeper = subprocess.Popen([str(odd_name), "600"], start_new_session=True)
    try:
        poll(lambda: proc_stat(sleeper.pid).state == "S", "the sleep", timeout=30, interval=0.05)
        stat = proc_stat(sleeper.pid)
        assert (stat.parent, stat.session) == (os.getpid(), sleeper.pid)
        assert stat.started == proc_stat(sleeper.pid).started != proc_stat(os.getpid()).started
    finally:
        sleeper.kill()
        sleeper.wait()
