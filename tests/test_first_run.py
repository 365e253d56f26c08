"""The README's first command, then the generated project's `make run` as a new team uses it.

`scripts/demo.py` (what `make demo` runs) bakes the default project and runs a DAG on SQLite
through the project's own Makefile. On that same project, `make run` starts as a user starts it:
the test chooses only the loopback port (`make run API_PORT=...`) and provides no connection,
date or setting. Then it does what a new team does in its first minutes, three times in a row:
unpause every DAG the API lists and trigger each with no logical date and with the current
time. Every run must succeed, with no "database is locked" in any log, no HTTP error, and the
scheduler alive. Also: a busy port is named before anything starts, a second make run in the
project names the running one and leaves it alone, a killed component is restarted and
reported, an edit in plugins/ reaches the next task, a task running at Ctrl-C finishes and
records its state, a connection the user set wins over the stand-ins, a second Ctrl-C stops at
once, and no process outlives Ctrl-C.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from airflow_stack import LOCK_ERROR, MakeRun, lock_errors, make_run, make_run_that_must_refuse
from helpers import TEMPLATE_DIR
from services import CaptureServer, capture_server, free_port, poll

pytestmark = pytest.mark.airflow

BURSTS = 3
# Sized for a loaded 2-core box: three bursts of every example DAG, on 4 LocalExecutor slots.
BURSTS_TIMEOUT = 3600


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo")
    result = subprocess.run(
        [sys.executable, str(TEMPLATE_DIR / "scripts" / "demo.py"), "--output-dir", str(output)],
        capture_output=True,
        text=True,
        timeout=1800,
        stdin=subprocess.DEVNULL,
    )
    projects = [path for path in output.iterdir() if path.is_dir()]
    return result, projects


def test_demo_bakes_the_default_project_and_runs_a_dag(demo):
    result, projects = demo
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [project.name for project in projects] == ["data_platform_airflow"]
    project = projects[0]
    full_output = (project / ".airflow" / "demo.log").read_text()
    assert "DagRun Finished: dag_id=example_safe_taskflow" in full_output and "state=success" in full_output
    assert "example_safe_taskflow finished with state success on SQLite" in result.stdout
    assert "Tasks:   extract, report" in result.stdout
    # A summary and where to look, not the tasks' return values.
    assert "Returned value was" not in result.stdout and len(result.stdout.splitlines()) < 30, result.stdout
    assert f"Project: {project}" in result.stdout
    assert (project / ".airflow" / "airflow.db").exists(), "the demo must use the embedded SQLite database"


@pytest.mark.parametrize("target", ["test", "lint", "test-dags"])
def test_generated_makefile_targets_pass(demo, target):
    _, projects = demo
    result = subprocess.run(
        ["make", "-C", str(projects[0]), target], capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if target == "test":
        assert " passed" in result.stdout and "failed" not in result.stdout


def test_a_busy_port_is_named_with_the_setting_that_moves_it(demo):
    # Before make run holds the project: something else (another Airflow, a notebook) has the port.
    _, projects = demo
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = make_run_that_must_refuse(projects[0], port)
    assert result.returncode != 0
    assert f"127.0.0.1:{port} is in use" in result.stdout and "make run API_PORT=" in result.stdout, result.stdout
    assert "restarting" not in result.stdout, "nothing may start before the port is known to be free"


def root_runtime(project: Path) -> Path:
    """Where scripts/run_local/postgres.py keeps the embedded PostgreSQL when it runs as root."""
    return Path("/var/tmp") / f"airflow-make-run-{hashlib.sha256(str(project.resolve()).encode()).hexdigest()[:12]}"


@pytest.fixture(scope="module")
def local_run(demo, tmp_path_factory):
    _, projects = demo
    project = projects[0]
    output = tmp_path_factory.mktemp("make-run") / "make-run.log"
    try:
        with make_run(project, output) as stack:
            yield stack
    finally:
        shutil.rmtree(root_runtime(project), ignore_errors=True)


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 as /proc/net shows them


def listening_sockets(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket these processes listen on, from /proc/net/tcp and tcp6."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add((address, int(hex_port, 16)))
    return found


def test_make_run_serves_on_loopback_and_says_how_to_log_in(local_run):
    said = local_run.said()
    assert f"Airflow is up on http://127.0.0.1:{local_run.port}" in said
    listening = listening_sockets(local_run.processes())
    assert ("0100007F", local_run.port) in listening
    assert {address for address, _ in listening} <= LOOPBACK, f"make run listens beyond loopback: {listening}"
    assert "SimpleAuthManager, for a laptop only" in said
    password_file = local_run.home / "simple_auth_manager_passwords.json.generated"
    assert str(password_file) in said
    assert json.loads(password_file.read_text())["admin"] not in said, "the password is never printed"
    version = local_run.request("GET", "/api/v2/version")
    assert version["version"] == "3.3.2"
    # Alert and UI links use the URL make run serves, not Airflow's default localhost:8080. Every
    # component gets one environment; Airflow's own processes retitle themselves (setproctitle),
    # which blanks their /proc environ, so it is read from the stand-in's plain Python process.
    environ = Path(f"/proc/{local_run.component_pid('stand-in-apis')}/environ").read_bytes().split(b"\0")
    assert f"AIRFLOW__API__BASE_URL=http://127.0.0.1:{local_run.port}".encode() in environ


def test_a_second_make_run_in_the_project_names_the_running_one_and_leaves_it_alone(local_run):
    # A second terminal, a forgotten tab: the user runs make run again in the same project.
    result = make_run_that_must_refuse(local_run.project, free_port())
    assert result.returncode != 0
    running = re.search(r"make run is already running for this project \(pid (\d+), (\S+)\)", result.stdout)
    assert running, result.stdout + result.stderr
    assert running[2] == local_run.url
    assert os.getsid(int(running[1])) == local_run.process.pid, "the pid named is not the running make run's"
    assert local_run.request("GET", "/api/v2/monitor/health")["metadatabase"]["status"] == "healthy"
    local_run.alive()


def test_a_killed_component_is_restarted_and_reported(local_run):
    killed = local_run.component_pid("scheduler")
    os.killpg(killed, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while "restarting scheduler (1 of 3" not in local_run.said():
        local_run.alive()
        assert time.monotonic() < deadline, local_run.said()[-2000:]
        time.sleep(1)
    assert "scheduler exited (killed by SIGKILL)" in local_run.said()
    restarted = local_run.component_pid("scheduler")
    assert restarted != killed
    os.kill(restarted, 0)  # alive


def wait_for_every_dag_file(stack: MakeRun, timeout: float = 600) -> list[str]:
    """The DAG ids the API lists once the dag-processor has parsed every file in dags/."""
    files = {path.name for path in (stack.project / "dags").glob("*.py")}
    deadline = time.monotonic() + timeout
    while True:
        dags = stack.request("GET", "/api/v2/dags?limit=1000")["dags"]
        errors = stack.request("GET", "/api/v2/importErrors")["import_errors"]
        assert not errors, errors
        if files <= {Path(dag["relative_fileloc"]).name for dag in dags}:
            return sorted(dag["dag_id"] for dag in dags)
        assert time.monotonic() < deadline, f"not parsed: {files - {Path(d['relative_fileloc']).name for d in dags}}"
        time.sleep(5)


@contextlib.contextmanager
def dag_added(stack: MakeRun, dag_id: str, source: str) -> Iterator[None]:
    """dags/<dag_id>.py holding `source`, once the API lists the DAG; removed again afterwards."""
    dag_file = stack.project / "dags" / f"{dag_id}.py"
    try:
        dag_file.write_text(source)
        deadline = time.monotonic() + 600
        while dag_id not in stack.dag_ids():
            stack.alive()
            assert time.monotonic() < deadline, f"dags/{dag_id}.py was not parsed"
            time.sleep(5)
        yield
    finally:
        dag_file.unlink(missing_ok=True)


IN_FLIGHT_DAG = """
import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
         default_args={{"owner": "test", "retries": 0}}, tags=["test"]):
    # A shell, as many long tasks are: a SIGTERM would make BashOperator kill it (on_kill), and
    # it runs in a session of its own.
    BashOperator(task_id="outlast_ctrl_c", bash_command={command!r})
"""


@dataclass
class InFlight:
    """A run of a one-task DAG whose task is inside execute() and ends when `release` exists."""

    run_id: str
    release: Path


@contextlib.contextmanager
def task_in_execute(stack: MakeRun, dag_id: str, folder: Path) -> Iterator[InFlight]:
    """A run of a new one-task DAG, yielded once its task is inside execute(). The task runs until
    the test creates the release file, so no test depends on how fast the box finishes a task."""
    started, release = folder / f"{dag_id}.started", folder / f"{dag_id}.release"
    command = f"touch {started} && until [ -e {release} ]; do sleep 0.1; done && echo finished"
    with dag_added(stack, dag_id, IN_FLIGHT_DAG.format(dag_id=dag_id, command=command)):
        run_id = stack.burst([dag_id], modes=("null",))[dag_id, "null"]
        deadline = time.monotonic() + 600
        while not started.exists():
            stack.alive()
            assert time.monotonic() < deadline, stack.task_instances(dag_id, run_id)
            time.sleep(0.5)
        yield InFlight(run_id, release)


def test_every_dag_succeeds_through_three_bursts(local_run, tmp_path_factory):
    dag_ids = wait_for_every_dag_file(local_run)
    runs = {}
    for burst in range(BURSTS):
        for (dag_id, mode), run_id in local_run.burst(dag_ids).items():
            runs[dag_id, mode, burst] = run_id

    def alive() -> None:
        local_run.alive()
        os.kill(local_run.component_pid("scheduler"), 0)

    local_run.wait_for_runs(runs, timeout=BURSTS_TIMEOUT, alive=alive)
    # The runs that unpausing scheduled (and any asset-triggered ones) must finish green too.
    every_run = local_run.wait_for_every_run(timeout=1200, alive=alive)
    results: dict[str, dict[str, list[str]]] = {}
    for run_ in every_run:
        mode = run_["run_type"] if run_["run_type"] != "manual" else ("null" if not run_["logical_date"] else "now")
        results.setdefault(run_["dag_id"], {}).setdefault(mode, []).append(run_["state"])
    report = tmp_path_factory.getbasetemp() / "first-run-results.json"
    report.write_text(json.dumps(results, indent=1, sort_keys=True))
    print(f"per-DAG results ({report}):", json.dumps(results, sort_keys=True))
    assert {run_["state"] for run_ in every_run} == {"success"}, results
    assert set(results) == set(dag_ids)
    assert all(len(modes["null"]) == BURSTS and len(modes["now"]) == BURSTS for modes in results.values()), results

    assert lock_errors(local_run.home / "logs") == [] and LOCK_ERROR not in local_run.said()
    health = local_run.request("GET", "/api/v2/monitor/health")
    assert health["scheduler"]["status"] == "healthy", health
    assert "FAILED" not in local_run.said()

    # The examples reached the stand-ins, and the deferrable sensor waited in the real triggerer.
    stand_in_log = (local_run.logs / "stand-in-apis.log").read_text()
    assert "GET /orders?date=" in stand_in_log and "GET /exports/" in stand_in_log
    sensor_run = runs["example_deferrable_sensor", "null", 0]
    task_logs = local_run.home / "logs" / "dag_id=example_deferrable_sensor" / f"run_id={sensor_run}"
    task_logs = task_logs / "task_id=wait_for_export"
    assert "Pausing task as DEFERRED" in (task_logs / "attempt=1.log").read_text()
    trigger_logs = [path.read_text() for path in task_logs.glob("attempt=1.log.trigger.*.log")]
    assert trigger_logs and '"filename":"triggerer_job_runner.py"' in trigger_logs[0]


EDIT_PROBE_DAG = """
import pendulum
from airflow.sdk import DAG, task

from {package} import project_settings

with DAG("edit_probe", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False,
         default_args={{"owner": "test", "retries": 0}}, tags=["test"]):

    @task
    def owner() -> str:
        return project_settings.OWNER

    owner()
"""


def test_an_edit_in_plugins_reaches_the_next_task_without_a_restart(local_run):
    # The scheduler imported the package before it forked its workers (plugins/task_preload.py);
    # after a user edits a module of it, the next task must still run the code on disk.
    package = local_run.project.name
    settings = local_run.project / "plugins" / package / "project_settings.py"
    original = settings.read_text()

    def owner_seen_by_a_new_run() -> str:
        run_id = local_run.burst(["edit_probe"], modes=("null",))["edit_probe", "null"]
        local_run.wait_for_runs({("edit_probe", "null"): run_id}, timeout=600, alive=local_run.alive)
        quoted = urllib.parse.quote(run_id, safe="")
        path = f"/api/v2/dags/edit_probe/dagRuns/{quoted}/taskInstances/owner/xcomEntries/return_value"
        return local_run.request("GET", path)["value"]

    try:
        with dag_added(local_run, "edit_probe", EDIT_PROBE_DAG.format(package=package)):
            owner_line = next(line for line in original.splitlines() if line.startswith("OWNER = "))
            assert owner_seen_by_a_new_run() == json.loads(owner_line.removeprefix("OWNER = "))
            settings.write_text(original.replace(owner_line, 'OWNER = "edited-team"'))
            assert owner_seen_by_a_new_run() == "edited-team"
    finally:
        settings.write_text(original)


def test_local_state_is_owner_only(local_run):
    home = local_run.home
    exposed = [
        f"{path} {stat.filemode(path.stat().st_mode)}"
        for path in [home, *home.rglob("*")]
        if not path.is_symlink() and path.stat().st_mode & 0o077
    ]
    assert exposed == []
    assert (home / "airflow.db").exists(), "make demo's SQLite database is checked too"


SCHEDULER_GOT_SIGTERM = "Exiting gracefully upon receiving signal 15"  # Airflow's scheduler, in its log


@dataclass
class Restart:
    """What the user left in flight and changed around one Ctrl-C and restart of `make run`."""

    in_flight_run: str
    said_while_stopping: str
    left_after_stop: list[int]
    their_api: CaptureServer
    their_port: int


@pytest.fixture(scope="module")
def restart(local_run, tmp_path_factory):
    """The user points example_api at their own system in the UI (here its REST API), triggers a
    task that is inside execute() when they press Ctrl-C, sets example_export_api in .env, and
    starts make run again. One restart serves the two tests below: each is a minute of make run.
    The tests assert what the stop left; the fixture restarts make run whatever it left, so that
    one failure does not take the next tests' make run with it."""
    routes = {
        "/orders": (200, b'{"records": [{"order_id": "theirs"}]}'),
        "/exports/": (200, b'{"state": "ready", "rows": 1}'),
    }
    env_file = local_run.project / ".env"
    original_env = env_file.read_text()
    scheduler_log = local_run.logs / "scheduler.log"
    with capture_server(routes) as their_api:
        port = int(their_api.url.rsplit(":", 1)[1])
        body = {"connection_id": "example_api", "conn_type": "http", "host": "127.0.0.1", "port": port}
        local_run.request("PATCH", "/api/v2/connections/example_api", body)
        with task_in_execute(local_run, "in_flight_probe", tmp_path_factory.mktemp("in-flight")) as task:
            before_ctrl_c, scheduler_before = len(local_run.said()), len(scheduler_log.read_text())
            try:
                local_run.press_ctrl_c()
                # The task ends only once the scheduler has been told to stop, however long the
                # box takes to get there: it must still finish and record its state.
                poll(
                    lambda: SCHEDULER_GOT_SIGTERM in scheduler_log.read_text()[scheduler_before:],
                    f"{SCHEDULER_GOT_SIGTERM!r} in {scheduler_log}",
                    timeout=600,  # only ends a hang: no result depends on it
                    interval=0.2,
                )
                task.release.touch()
                local_run.process.wait(timeout=600)
                left = local_run.wait_until_gone()
                said_while_stopping = local_run.said()[before_ctrl_c:]
            finally:
                local_run.kill_everything()
                env_file.write_text(original_env + f"AIRFLOW_CONN_EXAMPLE_EXPORT_API={their_api.url}\n")
                try:
                    local_run.start()
                finally:
                    env_file.write_text(original_env)
            yield Restart(task.run_id, said_while_stopping, left, their_api, port)


def test_ctrl_c_lets_a_running_task_finish_and_record_its_state(local_run, restart):
    assert restart.left_after_stop == [], "processes outlived Ctrl-C"
    assert "[make run] stopped" in restart.said_while_stopping, restart.said_while_stopping
    # The task ended after its scheduler was told to stop: its end must have reached the
    # api-server. Killed or lost, it would not be a success of try 1: the new scheduler would
    # run it again as try 2, or fail it.
    [task_instance] = local_run.task_instances("in_flight_probe", restart.in_flight_run)
    assert (task_instance["state"], task_instance["try_number"]) == ("success", 1), task_instance
    runs = {("in_flight_probe", "null"): restart.in_flight_run}
    assert set(local_run.wait_for_runs(runs, timeout=600, alive=local_run.alive).values()) == {"success"}


def test_connections_the_user_sets_win_over_the_stand_ins(local_run, restart):
    said = local_run.said()
    assert "connection example_api: yours, from the metadata database" in said
    assert "connection example_export_api: AIRFLOW_CONN_EXAMPLE_EXPORT_API is set and wins" in said
    stored = local_run.request("GET", "/api/v2/connections/example_api")
    assert stored["port"] == restart.their_port, "make run must not overwrite the user's connection"

    runs = local_run.burst(["example_api_ingest", "example_deferrable_sensor"], modes=("now",))
    local_run.wait_for_runs(runs, timeout=900, alive=local_run.alive)
    assert any(request.path.startswith("/orders?date=") for request in restart.their_api.requests)
    assert any(request.path.startswith("/exports/") for request in restart.their_api.requests)


def test_ctrl_c_twice_stops_at_once_and_leaves_no_process(local_run, tmp_path):
    # A task that is never released outlasts make run's grace: the user presses Ctrl-C, reads
    # that running tasks get 30 s, and presses it again.
    with task_in_execute(local_run, "long_task_probe", tmp_path):
        before_ctrl_c = len(local_run.said())
        local_run.press_ctrl_c()
        poll(
            lambda: "Ctrl-C again stops at once" in local_run.said()[before_ctrl_c:],
            "make run's second-Ctrl-C hint",
            timeout=600,
            interval=0.2,
        )
        local_run.interrupt()
        assert local_run.wait_until_gone() == [], "processes outlived Ctrl-C"
        said = local_run.said()[before_ctrl_c:]
        assert "stopping at once" in said and "[make run] stopped" in said, said
        # Without the second Ctrl-C, make run would wait out the grace for the scheduler.
        assert "scheduler did not stop within" not in said, said
