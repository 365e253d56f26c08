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
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # Airflow's own dependency

from scripts.run_local.common import PROJECT, say

LOCKED = "database is locked"
STOP_GRACE = 30
# A traceback's last line, a log level (Airflow's structlog writes "[error    ]"), or an "Error:".
ERROR_LINE = re.compile(
    r"(^[\w.]+(Error|Exception|Exit)\b|\bERROR\b|\bFATAL\b|\bCRITICAL\b|\[(error|critical) *\]|[Ee]rror:)"
)


def session_members(sessions: set[int]) -> list[int]:
    """Every process in these sessions, whatever its process group."""
    members = []
    for pid in psutil.pids():
        with contextlib.suppress(OSError):
            if os.getsid(pid) in sessions:
                members.append(pid)
    return members


def last_error_line(log: Path) -> str:
    """The line of a component's log that best explains why it stopped."""
    try:
        with log.open("rb") as stream:
            stream.seek(max(0, log.stat().st_size - 65536))
            lines = [line.strip() for line in stream.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
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

    def signal_group(self, signum: int) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    def still_leads(self, leader: int) -> bool:
        """Whether a session this component started is still its own: its leader is the process
        not yet reaped, or its pid is free. (A reaped leader's pid may belong to a stranger.)"""
        return (leader == self.process.pid and self.process.returncode is None) or not psutil.pid_exists(leader)

    def wait_stopped(self, deadline: float) -> None:
        if not self.process:
            return
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{self.name} did not stop within {STOP_GRACE} s; killing it")
        # Nothing a component started may outlive it. Airflow puts each task process in a process
        # group of its own, so the group is not enough: every session this component led is.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in session_members({leader for leader in self.sessions if self.still_leads(leader)}):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
