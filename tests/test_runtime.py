"""End to end on CeleryExecutor, as docker compose would run the celery bake, without Docker.

Each component (init job, api-server, scheduler, dag-processor, triggerer, Celery worker, the
examples' stand-in APIs) runs the command its service in docker-compose.yaml runs, with that
service's environment, the team's overrides and .env, as compose gives it. Only what the
container world provides is mapped: service hostnames to loopback ports of real Postgres and
Redis servers started here, and /opt/airflow paths to the project. Every DAG the API lists is
triggered with no logical date and with the current time, and every run must succeed. A fault:
the worker is killed mid-task, the scheduler notices through the task-instance heartbeat
timeout, and the retry succeeds. The hybrid bake runs its Celery side the same way.

The LocalExecutor end to end, through the project's own `make run`, is in test_first_run.py.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml
from airflow_stack import AirflowStack
from helpers import PROBES, BakedProject, airflow_env, project_venv, read_env_file
from services import (
    free_port,
    kill_family,
    postgres_bindir,
    postgres_server,
    process_family,
    redis_server,
    wait_for_url,
)

pytestmark = pytest.mark.airflow

# Ports the containers listen on, from docker-compose.yaml's own URLs.
SERVICE_PORTS = {
    "postgres": 5432,
    "redis": 6379,
    "api-server": 8080,
    "stand-in-apis": 8000,
    "warehouse": 5432,
    "statsd-exporter": 9125,
}
URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"',]+")
# Compose's containers run the image, whose /opt/airflow holds these folders of the project.
PROJECT_FOLDERS = ("dags", "plugins", "config", "scripts")


class ComposeWorld:
    """Maps what docker-compose.yaml names inside its network to this machine."""

    def __init__(self, project: Path, home: Path, ports: dict[str, int]) -> None:
        self.project, self.home, self.ports = project, home, ports

    def url(self, match: re.Match) -> str:
        parts = urlsplit(match[0])
        if parts.hostname not in self.ports:
            return match[0]
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo + '@' if userinfo else ''}127.0.0.1:{self.ports[parts.hostname]}"
        return urlunsplit(parts._replace(netloc=netloc))

    def path(self, match: re.Match) -> str:
        first = match[1].split("/")[0]
        base = self.project if first in PROJECT_FOLDERS else self.home
        return str(base / match[1])

    def map(self, value: str) -> str:
        if value in self.ports:  # a bare hostname, e.g. the StatsD host
            return "127.0.0.1"
        value = URL.sub(self.url, value)
        return re.sub(r"/opt/airflow/?([\w./-]*)", self.path, value)

    def environment(self, service: dict) -> dict[str, str]:
        return {name: self.map(str(value)) for name, value in (service.get("environment") or {}).items()}


def compose_services(project: BakedProject) -> dict[str, dict]:
    """docker-compose.yaml's services, with its YAML anchors and merge keys resolved."""
    return yaml.safe_load(project.read("docker-compose.yaml"))["services"]


def create_warehouse_role(url: str) -> None:
    """The role compose's warehouse service creates from POSTGRES_USER (trust auth: any password)."""
    sql = "CREATE ROLE warehouse LOGIN; ALTER DATABASE warehouse OWNER TO warehouse;"
    subprocess.run([postgres_bindir() / "psql", url, "-c", sql], check=True, capture_output=True)


@contextlib.contextmanager
def compose_stack(project: BakedProject, home: Path, test_env: dict[str, str] | None = None):
    """The project's compose stack as local processes on real Postgres and Redis."""
    services = compose_services(project)
    venv = project_venv(project)
    with postgres_server(("airflow", "warehouse")) as urls, redis_server() as broker:
        ports = dict(SERVICE_PORTS)
        ports["postgres"] = ports["warehouse"] = urlsplit(urls["airflow"]).port
        ports["redis"] = urlsplit(broker).port
        ports["api-server"] = free_port()
        ports["stand-in-apis"] = free_port()
        create_warehouse_role(urls["airflow"])
        world = ComposeWorld(project.path, home, ports)
        # The project's own auth manager, as compose runs it (airflow_env picks SimpleAuthManager, as make run does).
        base = airflow_env(project.path, venv, home)
        del base["AIRFLOW__CORE__AUTH_MANAGER"]
        # The api-server's published port, "127.0.0.1:8080:8080", is a loopback port here.
        base |= {"AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(ports["api-server"])}

        def env_of(name: str) -> dict[str, str]:
            # The service's env_files in order, then its environment, as compose layers them.
            files = [read_env_file(project.path, path) for path in services[name].get("env_file", [])]
            from_files = functools.reduce(operator.or_, files, {})
            return base | from_files | world.environment(services[name]) | (test_env or {})

        stack = AirflowStack(project, venv, home, env_of("scheduler"), port=ports["api-server"])
        try:
            if "stand-in-apis" in services:
                argv = [world.map(part) for part in services["stand-in-apis"]["command"]]
                argv[argv.index("--host") + 1] = "127.0.0.1"
                argv[argv.index("--port") + 1] = str(ports["stand-in-apis"])
                argv[0] = str(venv / "bin" / "python")
                stack.start_process("stand-in-apis", argv, env_of("stand-in-apis"))
                wait_for_url(
                    f"http://127.0.0.1:{ports['stand-in-apis']}/health",
                    stack.processes["stand-in-apis"],
                    timeout=120,
                    exited=lambda: stack.log("stand-in-apis"),
                )
            init = [world.map(part) for part in services["airflow-init"]["command"]]
            result = subprocess.run(
                init, cwd=project.path, env=env_of("airflow-init"), capture_output=True, text=True, timeout=900
            )
            assert result.returncode == 0, f"{shlex.join(init)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            for name in ("api-server", "scheduler", "dag-processor", "triggerer", "worker"):
                stack.start(name, *services[name]["command"].split(), env=env_of(name))
            stack.wait_until_serving(timeout=600, sign_in=False)
            admin = read_env_file(project.path, ".env.auth")
            credentials = {"username": admin["AIRFLOW_ADMIN_USERNAME"], "password": admin["AIRFLOW_ADMIN_PASSWORD"]}
            stack.token = stack.request("POST", "/auth/token", credentials)["access_token"]
            yield stack
        finally:
            stack.stop_all()


# Short on purpose: the fault test waits this long for the scheduler to notice the dead worker.
HEARTBEAT_TIMEOUT = 20


@pytest.fixture(scope="module")
def celery_stack(baked, tmp_path_factory):
    home = tmp_path_factory.mktemp("runtime-celery")
    project = baked("celery").copy_to(home)
    shutil.copy(PROBES / "fault_probe.py", project.path / "dags")
    # The fault test's only deviation from compose: a short heartbeat timeout, to keep it quick.
    heartbeat = {
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    }
    with compose_stack(project, home, heartbeat) as stack:
        yield stack


def every_bake_dag(stack: AirflowStack, added_by_tests: set[str], timeout: float = 600) -> list[str]:
    """The DAG ids the API lists once the dag-processor has parsed every file in dags/."""
    files = {path.name for path in (stack.project.path / "dags").glob("*.py")}
    deadline = time.monotonic() + timeout
    while True:
        dags = stack.request("GET", "/api/v2/dags?limit=1000")["dags"]
        errors = stack.request("GET", "/api/v2/importErrors")["import_errors"]
        assert not errors, errors
        parsed = {Path(dag["relative_fileloc"]).name for dag in dags}
        if files <= parsed:
            return sorted(dag["dag_id"] for dag in dags if dag["dag_id"] not in added_by_tests)
        assert time.monotonic() < deadline, f"the dag-processor did not parse {sorted(files - parsed)}"
        time.sleep(5)


def alive(stack: AirflowStack):
    def check() -> None:
        for name, process in stack.processes.items():
            assert process.poll() is None, f"{name} exited:\n{stack.log(name)[-3000:]}"

    return check


def test_celery_executor_runs_every_dag_with_and_without_a_logical_date(celery_stack):
    dag_ids = every_bake_dag(celery_stack, added_by_tests={"fault_probe"})
    runs = celery_stack.burst(dag_ids)
    celery_stack.wait_for_runs(runs, timeout=2400, alive=alive(celery_stack))
    every_run = [run_ for run_ in celery_stack.wait_for_every_run(1200, alive(celery_stack))]
    results: dict[str, dict[str, list[str]]] = {}
    for run_ in every_run:
        mode = run_["run_type"] if run_["run_type"] != "manual" else ("null" if not run_["logical_date"] else "now")
        results.setdefault(run_["dag_id"], {}).setdefault(mode, []).append(run_["state"])
    print("per-DAG results (celery):", results)
    assert {run_["state"] for run_ in every_run} == {"success"}, results
    assert set(results) == set(dag_ids)
    # The worker ran them, and the examples reached the stand-ins compose starts.
    assert "celery@" in celery_stack.log("worker")
    stand_in_log = celery_stack.log("stand-in-apis")
    assert "GET /orders?date=" in stand_in_log and "GET /exports/" in stand_in_log


def wait_for_task(stack: AirflowStack, dag_id: str, run_id: str, task_id: str, done, what: str, timeout: float):
    """Poll the task instance until done(ti) holds; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = next(ti for ti in stack.task_instances(dag_id, run_id) if ti["task_id"] == task_id)
        if done(task):
            return task
        time.sleep(1)
    raise AssertionError(f"{task_id} never {what}: still {task['state']} on try {task['try_number']}")


def test_a_killed_worker_is_detected_and_its_task_retried(celery_stack):
    every_bake_dag(celery_stack, added_by_tests=set())
    run_id = celery_stack.trigger("fault_probe", None)
    wait_for_task(
        celery_stack,
        "fault_probe",
        run_id,
        "hang_on_first_try",
        lambda ti: ti["state"] == "running",
        "started",
        timeout=300,
    )

    # The whole worker dies, as with its machine: its group, and the task that the supervisor put
    # in a process group of its own.
    worker = celery_stack.processes.pop("worker")
    family = process_family(worker.pid)
    os.killpg(worker.pid, signal.SIGKILL)
    kill_family(family)
    worker.wait(timeout=30)
    killed_at = time.monotonic()

    # Detected means the first try was failed and a retry scheduled: with a 1 s retry delay the
    # state moves on to scheduled/queued quickly, so the try number is what shows it.
    detected = wait_for_task(
        celery_stack,
        "fault_probe",
        run_id,
        "hang_on_first_try",
        lambda ti: ti["try_number"] >= 2 or ti["state"] in {"up_for_retry", "failed"},
        "left its dead first try",
        timeout=300,
    )
    assert detected["state"] != "failed", "with retries=1 the task must be retried, not failed"
    assert time.monotonic() - killed_at >= HEARTBEAT_TIMEOUT - 5, "detected by the heartbeat timeout, not sooner"

    services = compose_services(celery_stack.project)
    celery_stack.start("worker", *services["worker"]["command"].split())
    assert celery_stack.wait_for_run("fault_probe", run_id) == "success"
    final = next(ti for ti in celery_stack.task_instances("fault_probe", run_id))
    assert final["try_number"] == 2


def test_hybrid_runs_its_celery_side_end_to_end(baked, tmp_path):
    # No cluster here: compose's own stand-in runs LocalExecutor under the name KubernetesExecutor
    # (an executor alias), so the DAG that routes a task there parses and runs; the pod itself is
    # proven by the project's tests/test_task_pods.py against the provider's own loader.
    project = baked("hybrid")
    with compose_stack(project, tmp_path) as stack:
        assert "KubernetesExecutor:LocalExecutor" in stack.env["AIRFLOW__CORE__EXECUTOR"]
        every_bake_dag(stack, added_by_tests=set())
        runs = stack.burst(["example_safe_taskflow", "example_kubernetes_offload"])
        states = stack.wait_for_runs(runs, timeout=1200, alive=alive(stack))
        assert set(states.values()) == {"success"}
        worker_log = stack.log("worker")
        assert "example_safe_taskflow" in worker_log and "crunch" not in worker_log
