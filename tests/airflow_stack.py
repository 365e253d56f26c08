"""A real Airflow from a baked project, driven through REST API v2 with a JWT.

`make_run()` starts it as a user does, with the project's own `make run`; the test chooses only
the loopback port. `airflow_stack()` starts every component as a separate process (api-server,
scheduler, dag-processor, triggerer and, for Celery, workers) with the environment a deployment
gives them. Each runs in its own process group and is stopped with it.

`burst()` and `wait_for_runs()` do what a new team does in its first minute: unpause every DAG
the API lists and trigger each with no logical date and with the current time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from helpers import BakedProject, airflow_env, project_venv, run
from services import free_port, running_processes, stop_process_group

FINISHED = {"success", "failed"}
LOCK_ERROR = "database is locked"


class RestClient:
    """REST API v2 with a JWT. Any HTTP error (a 500 above all) raises, naming the request."""

    port: int
    token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            raise HTTPStatusError(method, path, error.code, error.read()[:500]) from None
        return json.loads(payload) if payload else {}

    def log_in(self, password_file: Path) -> None:
        password = json.loads(password_file.read_text())["admin"]
        self.token = self.request("POST", "/auth/token", {"username": "admin", "password": password})["access_token"]

    def dag_ids(self) -> list[str]:
        return sorted(dag["dag_id"] for dag in self.request("GET", "/api/v2/dags?limit=1000")["dags"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}")["state"]

    def all_runs(self) -> list[dict]:
        return self.request("GET", "/api/v2/dags/~/dagRuns?limit=1000")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = urllib.request.quote(run_id, safe="")
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=1000")["task_instances"]

    def burst(self, dag_ids: list[str], modes: tuple[str, ...] = ("null", "now")) -> dict[tuple[str, str], str]:
        """Unpause every DAG, then trigger each with no logical date and with now: (dag_id, mode) -> run_id."""
        for dag_id in dag_ids:
            self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        runs = {}
        for dag_id in dag_ids:
            for mode in modes:
                logical_date = None if mode == "null" else datetime.now(UTC).isoformat()
                body = {"logical_date": logical_date}
                runs[dag_id, mode] = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]
        return runs

    def wait_for_runs(self, runs: dict, timeout: float, alive=lambda: None) -> dict:
        """Wait until every run is finished; fail at once on a failed one, and on timeout name what was left.

        `alive()` raises if the deployment died. Returns key -> state.
        """
        deadline = time.monotonic() + timeout
        states: dict = {}
        while True:
            for key, run_id in runs.items():
                if states.get(key) not in FINISHED:
                    states[key] = self.run_state(key[0], run_id)
                    if states[key] == "failed":
                        raise AssertionError(f"{key} {run_id} failed: {self.task_states(key[0], run_id)}")
            if all(state in FINISHED for state in states.values()):
                return states
            alive()
            if time.monotonic() > deadline:
                waiting = {
                    f"{key} {runs[key]}": self.task_states(key[0], runs[key])
                    for key, state in states.items()
                    if state not in FINISHED
                }
                raise AssertionError(f"runs not finished within {timeout} s: {waiting}")
            time.sleep(5)

    def wait_for_every_run(self, timeout: float, alive=lambda: None) -> list[dict]:
        """Wait until no run of any DAG is queued or running (scheduled and asset-triggered ones too)."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.all_runs()
            failed = [run_ for run_ in runs if run_["state"] == "failed"]
            assert not failed, {
                f"{run_['dag_id']} {run_['dag_run_id']}": self.task_states(run_["dag_id"], run_["dag_run_id"])
                for run_ in failed
            }
            waiting = [f"{r['dag_id']} {r['dag_run_id']} {r['state']}" for r in runs if r["state"] not in FINISHED]
            if not waiting:
                return runs
            alive()
            assert time.monotonic() < deadline, f"runs not finished within {timeout} s: {waiting}"
            time.sleep(5)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {
            f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]: ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }


def lock_errors(folder: Path) -> list[str]:
    """Every file under `folder` that mentions a SQLite lock error."""
    return [
        str(path) for path in folder.rglob("*") if path.is_file() and LOCK_ERROR in path.read_text(errors="replace")
    ]


class HTTPStatusError(AssertionError):
    """An API answer outside 2xx: fails a test with the body, and tells access tests the status."""

    def __init__(self, method: str, path: str, code: int, body: bytes) -> None:
        super().__init__(f"{method} {path} answered HTTP {code}: {body!r}")
        self.code = code


def http_status(call) -> int:
    """The HTTP status `call` met: 200 if it returned, else the status of the error it raised."""
    try:
        call()
    except (urllib.error.HTTPError, HTTPStatusError) as error:
        return error.code
    return 200


@dataclass
class AirflowStack(RestClient):
    project: BakedProject
    venv: Path
    home: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    token: str = ""

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run([str(self.venv / "bin" / "airflow"), *args], self.project.path, self.env, check)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.start_process(name, [str(self.venv / "bin" / "airflow"), *args], env)

    def start_process(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.home / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            argv,
            cwd=self.project.path,
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str) -> None:
        stop_process_group(self.processes.pop(name))

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def wait_until_serving(self, timeout: float = 240, sign_in: bool = True) -> None:
        """Wait for the API; then, unless told not to, sign in as SimpleAuthManager's admin."""
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.processes.items():
                assert process.poll() is None, f"{name} exited:\n{self.log(name)[-3000:]}"
            try:
                self.request("GET", "/api/v2/version")
                break
            except (OSError, AssertionError):  # not listening yet, or answering 503 while it starts
                assert time.monotonic() < deadline, f"api-server did not come up:\n{self.log('api-server')[-3000:]}"
                time.sleep(1)
        if sign_in:
            self.log_in(self.home / "simple_auth_manager_passwords.json.generated")

    def wait_for_dags(self, dag_ids: set[str], timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while True:
            known = {dag["dag_id"] for dag in self.request("GET", "/api/v2/dags?limit=200")["dags"]}
            if dag_ids <= known:
                return
            errors = self.request("GET", "/api/v2/importErrors")["import_errors"]
            assert not errors, errors
            assert time.monotonic() < deadline, f"the dag-processor did not parse {sorted(dag_ids - known)}"
            time.sleep(2)

    def trigger(self, dag_id: str, logical_date: str | None) -> str:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run_ = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": logical_date})
        return run_["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 420) -> str:
        deadline = time.monotonic() + timeout
        quoted = urllib.request.quote(run_id, safe="")
        while time.monotonic() < deadline:
            state = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")["state"]
            if state in FINISHED:
                return state
            for name, process in self.processes.items():
                assert process.poll() is None, f"{name} exited:\n{self.log(name)[-3000:]}"
            time.sleep(2)
        raise AssertionError(f"{dag_id} {run_id} did not finish in {timeout} s")


@contextlib.contextmanager
def airflow_stack(project: BakedProject, home: Path, extra_env: dict[str, str]) -> Iterator[AirflowStack]:
    """Migrate, import pools and start the core components; stops every process group on exit."""
    venv = project_venv(project)
    port = free_port()
    env = airflow_env(project.path, venv, home) | {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": f"file://{home}/xcom",
        **extra_env,
    }
    stack = AirflowStack(project, venv, home, env, port=port)
    stack.airflow("db", "migrate")
    stack.airflow("pools", "import", "config/pools.json")
    try:
        stack.start("api-server", "api-server", "--port", str(port))
        stack.start("scheduler", "scheduler")
        stack.start("dag-processor", "dag-processor")
        stack.start("triggerer", "triggerer")
        stack.wait_until_serving()
        yield stack
    finally:
        stack.stop_all()


def processes_with(marker: str) -> list[int]:
    """PIDs whose environment carries the marker: everything a `make run` started, whoever runs it."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def make_run_command(project: Path, port: int) -> list[str]:
    """`make run` as a user types it; the test chooses only the port."""
    return ["make", "-C", str(project), "run", f"API_PORT={port}"]


def make_run_that_must_refuse(project: Path, port: int) -> subprocess.CompletedProcess:
    """A `make run` expected to refuse to start, run to its exit with a user's environment."""
    return subprocess.run(
        make_run_command(project, port),
        env=MakeRun.users_environment(),
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class MakeRun(RestClient):
    """The project's own `make run`, started as a user starts it. The test chooses only the
    loopback port, through the documented `make run API_PORT=...`."""

    project: Path
    output: Path
    port: int = field(default_factory=free_port)
    marker: str = field(default_factory=lambda: f"MAKE_RUN_TEST_{os.urandom(8).hex()}")
    process: subprocess.Popen | None = None
    token: str = ""

    @property
    def home(self) -> Path:
        return self.project / ".airflow"

    @property
    def logs(self) -> Path:
        return self.home / "logs" / "make-run"

    def said(self) -> str:
        return self.output.read_text(errors="replace")

    @staticmethod
    def users_environment() -> dict[str, str]:
        """Only what a user's shell has: no AIRFLOW_* variable from the test's own environment."""
        return {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}

    def start(self, timeout: float = 900) -> None:
        env = self.users_environment()
        earlier = len(self.said()) if self.output.exists() else 0  # a second start appends
        with self.output.open("a") as out:
            self.process = subprocess.Popen(
                make_run_command(self.project, self.port),
                env=env | {self.marker: "1"},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # make leads a group, like a shell's foreground job
            )
        deadline = time.monotonic() + timeout
        while "Airflow is up on" not in self.said()[earlier:]:
            self.alive()
            assert time.monotonic() < deadline, f"make run did not come up within {timeout} s:\n{self.said()[-3000:]}"
            time.sleep(2)
        self.log_in(self.home / "simple_auth_manager_passwords.json.generated")

    def alive(self) -> None:
        assert self.process.poll() is None, f"make run exited {self.process.returncode}:\n{self.said()[-3000:]}"

    def component_pid(self, name: str) -> int:
        """The process make run started last for a component (its log's last start line)."""
        starts = [line for line in (self.logs / f"{name}.log").read_text().splitlines() if "make run started" in line]
        return int(re.search(r"pid (\d+)", starts[-1])[1])

    def processes(self) -> list[int]:
        """Every process of this make run: make's session, each component's session, and anything
        that kept the marker in its environment. (Airflow retitles its processes with setproctitle,
        which can hide their environment from /proc, so the marker alone misses some.)"""
        sessions = {self.process.pid} if self.process else set()
        for log in self.logs.glob("*.log"):
            sessions |= {int(pid) for pid in re.findall(r"make run started \S+, pid (\d+)", log.read_text())}
        found = set(processes_with(self.marker))
        found |= {pid for pid, stat in running_processes().items() if stat.session in sessions}
        return sorted(found)

    def press_ctrl_c(self) -> None:
        """What Ctrl-C does: SIGINT to the foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def interrupt(self, timeout: float = 180) -> int:
        """Ctrl-C, then wait for make to exit. Returns make's exit code."""
        self.press_ctrl_c()
        return self.process.wait(timeout=timeout)

    def wait_until_gone(self, timeout: float = 120) -> list[int]:
        deadline = time.monotonic() + timeout
        while self.processes() and time.monotonic() < deadline:
            time.sleep(1)
        return self.processes()

    def kill_everything(self) -> None:
        """Cleanup whatever happened: no process of this make run may outlive the test."""
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)


@contextlib.contextmanager
def make_run(project: Path, output: Path) -> Iterator[MakeRun]:
    stack = MakeRun(project, output)
    try:
        stack.start()
        yield stack
    finally:
        stack.kill_everything()
