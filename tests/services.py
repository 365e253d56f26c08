"""Real servers for the slow tiers, on loopback ports, each stopped with its whole process group.

Postgres comes from the Debian packages that .ci/run installs. It refuses to run as root, so
when the tests run as root the server runs as the `postgres` user those packages create.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class ProcStat:
    """What /proc/<pid>/stat says of one process."""

    state: str  # "Z" once it has exited and waits for its parent
    parent: int
    session: int
    started: str  # clock ticks after boot: with the pid, this names one process even after the pid is reused


def proc_stat(pid: int) -> ProcStat:
    # The fields after the command name, which may itself hold spaces and parentheses.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return ProcStat(state=fields[0], parent=int(fields[1]), session=int(fields[3]), started=fields[19])


def running_processes() -> dict[int, ProcStat]:
    """Every process on the machine, by pid; one that exits while being read is left out."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                found[int(entry.name)] = proc_stat(int(entry.name))
    return found


def process_family(pid: int) -> dict[int, str]:
    """The process and all its descendants, each with its start time, so a reused pid is never taken for one."""
    processes = running_processes()
    children: dict[int, list[int]] = {}
    for child, stat in processes.items():
        children.setdefault(stat.parent, []).append(child)
    family, todo = {}, [pid]
    while todo:
        member = todo.pop()
        if member in processes and member not in family:
            family[member] = processes[member].started
            todo += children.get(member, [])
    return family


def kill_family(family: dict[int, str]) -> None:
    """SIGKILL every process of a family taken earlier that is still the same process."""
    for pid, started in family.items():
        with contextlib.suppress(OSError, IndexError):
            if proc_stat(pid).started == started:
                os.kill(pid, signal.SIGKILL)


def stop_process_group(process: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the process's whole group, then SIGKILL whatever is left after `grace` seconds.

    Airflow 3's task supervisor puts each task in a process group of its own, which a signal to
    the component's group does not reach: every descendant found before the signal that is still
    alive afterwards is killed too.
    """
    family = process_family(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=grace)
    kill_family(family)


def poll(probe, what: str, timeout: float = 120, interval: float = 1):
    """Call `probe` until it returns something true, and return that; fail naming `what` at the timeout."""
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(interval)
    return result


def wait_for_url(
    url: str, process: subprocess.Popen, timeout: float, exited: Callable[[], str], interval: float = 1
) -> str:
    """Poll `url` until it answers, and return the body; fail at once if `process` exits first.

    `exited` builds the failure message only when needed (it often reads a log file).
    """
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, exited()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            assert time.monotonic() < deadline, f"{url} did not answer within {timeout} s"
            time.sleep(interval)


def postgres_bindir() -> Path:
    found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql (see .ci/run)")
    return Path(os.path.realpath(found)).parent


@contextlib.contextmanager
def postgres_server(databases: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields one SQLAlchemy-style URL per database."""
    bindir = postgres_bindir()
    as_user = "postgres" if os.geteuid() == 0 else None
    data = Path(tempfile.mkdtemp(prefix="template-tests-pg-"))
    if as_user:
        account = pwd.getpwnam(as_user)
        os.chown(data, account.pw_uid, account.pw_gid)
    port = free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True, "user": as_user, "cwd": data}
    subprocess.run([bindir / "initdb", "-D", data, "-U", "airflow", "--auth=trust", "-E", "UTF8"], check=True, **quiet)
    server = subprocess.Popen(
        [bindir / "postgres", "-D", data, "-p", str(port), "-k", data, "-c", "listen_addresses=127.0.0.1"],
        start_new_session=True,
        **quiet,
    )
    try:
        deadline = time.monotonic() + 60
        ready = [bindir / "pg_isready", "-h", "127.0.0.1", "-p", str(port)]
        while subprocess.run(ready, capture_output=True).returncode:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start: {server.stderr.read() if server.stderr else ''}")
            time.sleep(0.2)
        for name in databases:
            subprocess.run(
                [bindir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", name],
                check=True,
                capture_output=True,
            )
        yield {name: f"postgresql://airflow@127.0.0.1:{port}/{name}" for name in databases}
    finally:
        stop_process_group(server)
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class CapturedRequest:
    method: str
    path: str
    body: bytes


@dataclass
class CaptureServer:
    """A local HTTP server that records every request and answers from a route table of path prefixes."""

    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    requests: list[CapturedRequest] = field(default_factory=list)
    url: str = ""

    def bodies(self, path_prefix: str = "/") -> list[str]:
        return [request.body.decode() for request in self.requests if request.path.startswith(path_prefix)]


@contextlib.contextmanager
def capture_server(routes: dict[str, tuple[int, bytes]] | None = None) -> Iterator[CaptureServer]:
    capture = CaptureServer(routes=dict(routes or {}))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            capture.requests.append(CapturedRequest(self.command, self.path, self.rfile.read(length)))
            path = self.path.split("?", 1)[0]
            prefixes = [prefix for prefix in capture.routes if path.startswith(prefix)]
            status, body = capture.routes[max(prefixes, key=len)] if prefixes else (200, b'{"ok": true}')
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = _answer

        def log_message(self, *args) -> None:  # keep test output readable
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    capture.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield capture
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway Redis on 127.0.0.1 without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redis-server not found: apt-get install redis-server (see .ci/run)")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"PING\r\n")
                if probe.recv(16).startswith(b"+PONG"):
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis did not start")
            time.sleep(0.2)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process_group(server)
