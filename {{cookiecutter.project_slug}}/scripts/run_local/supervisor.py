"""Starts make run's processes in order, restarts the ones that exit, and stops them all."""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from scripts.run_local.common import PROJECT, Failed, owner_only, say
from scripts.run_local.components import LOCKED, STOP_GRACE, Component, last_error_line, never
from scripts.run_local.postgres import EmbeddedPostgres
from scripts.run_local.settings import EXAMPLE_STAND_INS

# A component that exits more often than this within the window is not coming back by itself.
MAX_RESTARTS = 3
RESTART_WINDOW = 600
# Ctrl-C stops every other component first, then these groups in order, each once the one before
# has exited: a task still running when its scheduler is told to stop reports its end to the
# api-server (and may call the stand-ins), and every component writes to postgres.
STOP_LATER = (("api-server", "stand-in-apis"), ("postgres",))


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Supervisor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.home = owner_only(Path(os.environ["AIRFLOW_HOME"]))
        self.logs = owner_only(self.home / "logs" / "make-run")
        self.components: list[Component] = []
        self.hurry = False
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

    def claim_project(self) -> None:
        """One make run per project. A second would fail on postgres's own lock file, which does
        not say what holds it; this lock goes when its process does, however it ends."""
        self.lock = (self.home / "make-run.lock").open("a+")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock.seek(0)
            running = self.lock.read().strip()
            message = f"make run is already running for this project ({running}): use it, or stop it first"
            raise Failed(message) from None
        self.lock.truncate(0)
        self.lock.write(f"pid {os.getpid()}, {self.url}\n")
        self.lock.flush()

    def check_api_port(self) -> None:
        """A port something else listens on would show only as an api-server that keeps exiting."""
        host, port = self.args.host, self.args.port
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:  # as uvicorn binds
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    advice = f"stop what listens there, or pick another port, e.g. make run API_PORT={port + 10}"
                    raise Failed(f"{host}:{port} is in use: {advice}") from None
                raise Failed(f"the api-server cannot listen on API_HOST={host} API_PORT={port}: {error}") from None

    def start(self) -> None:
        self.claim_project()
        self.check_api_port()
        for secret in (self.home / "airflow.db", self.home / "simple_auth_manager_passwords.json.generated"):
            if secret.exists():
                secret.chmod(0o600)
        own_database = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        postgres = EmbeddedPostgres(self.home)
        postgres.initdb(self.logs / "postgres.log")
        server = self.add("postgres", postgres.command(), restartable=False, user=postgres.user)
        postgres.wait_ready(server)
        postgres.create_databases(*(("airflow", "warehouse") if EXAMPLE_STAND_INS else ("airflow",)))
        if own_database:
            say("metadata database: yours (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is set)")
        else:
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = postgres.url("airflow")
            say(f"metadata database: embedded PostgreSQL, socket in {postgres.socket_dir}")
        self.airflow_env()

        say("migrating the metadata database and importing config/pools.json")
        self.run_once("db-migrate", "airflow", "db", "migrate")
        self.run_once("pools-import", "airflow", "pools", "import", "config/pools.json")
        if EXAMPLE_STAND_INS:
            self.start_stand_ins(postgres)

        # Task logs are files on this machine, which the api-server reads itself: the scheduler's
        # and triggerer's log servers, which would listen on every interface, are not needed.
        self.add("api-server", ["airflow", "api-server"])
        self.add("scheduler", ["airflow", "scheduler", "--skip-serve-logs"])
        self.add("dag-processor", ["airflow", "dag-processor"])
        self.add("triggerer", ["airflow", "triggerer", "--skip-serve-logs"])
        self.wait_for_api()

    def start_stand_ins(self, postgres: EmbeddedPostgres) -> None:
        """The examples' stand-in HTTP APIs, and connections to them and to the `warehouse` database."""
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

    def hurry_up(self, signum: int, _frame) -> None:
        """Ctrl-C again while the components stop: stop them at once (see stop())."""
        self.hurry = True

    def in_a_hurry(self) -> bool:
        return self.hurry

    def stop(self) -> None:
        """Stop the components group by group (STOP_LATER), each group once the one before has
        exited. Once hurry_up() is called, all but postgres are killed at once instead."""
        if any(component.name == "scheduler" for component in self.components):
            say(f"running tasks get up to {STOP_GRACE} s to finish and record their state; Ctrl-C again stops at once")
        later = {name for group in STOP_LATER for name in group}
        groups = [[component for component in self.components if component.name not in later]]
        groups += [[component for component in self.components if component.name in group] for group in STOP_LATER]
        told = False
        for group in groups:
            for component in group:
                if component.name == "postgres":
                    component.signal(signal.SIGINT)  # its fast shutdown: roll back, checkpoint, exit
                elif not self.hurry:
                    component.signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            for component in group:
                component.wait_stopped(deadline, never if component.name == "postgres" else self.in_a_hurry)
            if self.hurry and not told:
                say("stopping at once: running tasks are killed; the next make run re-runs or fails them")
                told = True
