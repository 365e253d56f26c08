"""A real Airflow deployment from a baked project: its pinned venv, its own airflow.cfg, and
every component as a separate process (api-server, scheduler, dag-processor, triggerer and,
for Celery, workers), driven through REST API v2 with a JWT.

Only connections, ports, secrets and file locations are overridden by environment, as a
deployment would. Each component runs in its own process group and is stopped with it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from conftest import BakedProject, airflow_env, project_venv, run
from services import free_port, stop_process_group

FINISHED = {"success", "failed"}


@dataclass
class AirflowStack:
    project: BakedProject
    venv: Path
    home: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run([str(self.venv / "bin" / "airflow"), *args], self.project.path, self.env, check)

    def start(self, name: str, *args: str) -> None:
        log = (self.home / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            [str(self.venv / "bin" / "airflow"), *args],
            cwd=self.project.path,
            env=self.env,
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

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = response.read()
        return json.loads(payload) if payload else {}

    def wait_until_serving(self, timeout: float = 240, sign_in: bool = True) -> None:
        """Wait for the API; then, unless told not to, sign in as SimpleAuthManager's admin."""
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.processes.items():
                assert process.poll() is None, f"{name} exited:\n{self.log(name)[-3000:]}"
            try:
                self.request("GET", "/api/v2/version")
                break
            except OSError:
                assert time.monotonic() < deadline, f"api-server did not come up:\n{self.log('api-server')[-3000:]}"
                time.sleep(1)
        if not sign_in:
            return
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        self.token = self.request("POST", "/auth/token", {"username": "admin", "password": passwords["admin"]})[
            "access_token"
        ]

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

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = urllib.request.quote(run_id, safe="")
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=1000")["task_instances"]


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
