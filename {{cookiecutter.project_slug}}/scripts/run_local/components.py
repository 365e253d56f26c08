"""One supervised process: its own process group, its log file, its restarts and its stop."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # Airflow's own dependency

from scripts.run_local.common import PROJECT, say

LOCKED = "database is locked"
STOP_GRACE = 30
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # Airflow colours its log when FORCE_COLOR is set
# A traceback's last line, a log level (Airflow's structlog writes "[error    ]"), or an "Error:".
ERROR_LINE = re.compile(
    r"(^[\w.]+(Error|Exception|Exit)\b|\bERROR\b|\bFATAL\b|\bCRITICAL\b|\[(error|critical) *\]|[Ee]rror:)"
)


def never() -> bool:
    return False


def started_in(sessions: set[int]) -> list[psutil.Process]:
    """Every live process of these sessions, and every descendant of one, whatever its process
    group or session: Airflow gives each task a process group of its own, and BashOperator gives
    its shell a session of its own."""
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(process.pid) in sessions:
                found[process.pid] = process
                found.update((child.pid, child) for child in process.children(recursive=True))
    return [process for process in found.values() if alive(process)]


def alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def last_error_line(log: Path) -> str:
    """The line of a component's log that best explains why it stopped."""
    try:
        with log.open("rb") as stream:
            stream.seek(max(0, log.stat().st_size - 65536))
            lines = [line.strip() for line in stream.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    lines = [ANSI_COLOUR.sub("", line) for line in lines]
    for line in reversed(lines):
        if ERROR_LINE.search(line):
            return line[:400]
    return lines[-1][:400] if lines else "(empty log)"


@dataclass
class Component:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    restartable: bool = True
    user: str | None = None
    process: subprocess.Popen | None = None
    restarts: deque = field(default_factory=deque)
    sessions: set[int] = field(default_factory=set)  # one per start: each leads a session of its own
    scanned: int = 0
    reported_lock: bool = False

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as out:
            self.scanned = self.log.stat().st_size
            self.process = subprocess.Popen(
                self.command,
                cwd=PROJECT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a process group of its own, stopped as one
                user=self.user,
                group=self.user and pwd.getpwnam(self.user).pw_gid,
                extra_groups=[] if self.user else None,
            )
            self.sessions.add(self.process.pid)
            out.write(f"\n===== make run started {self.name}, pid {self.process.pid}, at {time.strftime('%X')} =====\n")

    def exit_description(self) -> str:
        code = self.process.returncode
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"

    def new_log_text(self) -> str:
        """What the component logged since the last call, with a little overlap for split lines."""
        start = max(0, self.scanned - len(LOCKED))
        try:
            with self.log.open("rb") as stream:
                stream.seek(start)
                data = stream.read()
        except OSError:
            return ""
        self.scanned = start + len(data)
        return data.decode(errors="replace")

    def signal(self, signum: int) -> None:
        """To the process alone: it stops its own children, as Airflow's components do. (A signal
        to the whole group would reach each running task, and SIGTERM makes a task kill itself.)"""
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.process.pid, signum)

    def still_leads(self, leader: int) -> bool:
        """Whether a session this component started is still its own: its leader is the process
        not yet reaped, or its pid is free. (A reaped leader's pid may belong to a stranger.)"""
        return (leader == self.process.pid and self.process.returncode is None) or not psutil.pid_exists(leader)

    def wait_stopped(self, deadline: float, give_up: Callable[[], bool] = never) -> None:
        """Wait for the process to exit, until the deadline or until give_up() is true; then kill
        whatever it started that still runs."""
        if not self.process:
            return
        while self.process.poll() is None and time.monotonic() < deadline and not give_up():
            time.sleep(0.1)
        if self.process.poll() is None and not give_up():
            say(f"{self.name} did not stop within {STOP_GRACE} s; killing it")
        self.kill_what_it_started()
        self.process.wait()

    def kill_what_it_started(self) -> None:
        """SIGKILL to the process, its group, and everything started_in() the sessions it led."""
        for _ in range(3):  # again, for what forked while we looked
            # Look before killing: a process whose parent dies moves to init, out of children()'s reach.
            left = started_in({leader for leader in self.sessions if self.still_leads(leader)})
            if self.process.poll() is None:  # not yet reaped, so its pid is still its group's
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
            left = [process for process in left if process.pid != self.process.pid]
            if not left:
                return
            for process in left:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            psutil.wait_procs(left, timeout=5)
