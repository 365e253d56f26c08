"""One real deployment, one probe run, observed the way an operator observes it.

The default bake on a real Postgres, with StatsD pointed at a UDP listener here, runs
probes/observability_probe.py: its metrics arrive under the names the alert rules use once translated
through the statsd_exporter mapping, scripts/dag_health.py reports the run through the REST API, and
each monitoring/sql query returns the run's rows from the metadata DB."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from airflow_stack import AirflowStack, airflow_stack
from helpers import PROBES, run
from monitoring import Sample, mappings, rule_series, translate
from services import free_port, poll, postgres_server

PROBE = "observability_probe"
HOLD_SECONDS = 8
HOLD = f"{HOLD_SECONDS} seconds"


@dataclass
class StatsdListener:
    """A UDP socket on loopback that keeps every StatsD line sent to it."""

    sock: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    lines: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def listen(self) -> None:
        with contextlib.suppress(OSError):  # the socket closes when the test ends
            while True:
                self.lines += self.sock.recv(65535).decode().splitlines()


@contextlib.contextmanager
def statsd_listener() -> Iterator[StatsdListener]:
    listener = StatsdListener()
    listener.sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=listener.listen, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        listener.sock.close()
        thread.join(timeout=10)


@dataclass
class Observed:
    stack: AirflowStack
    statsd: StatsdListener
    db_url: str
    run_id: str
    stuck_while_running: list[dict]

    def sql(self, name: str, **variables: str) -> list[dict]:
        """A monitoring/sql query as an operator runs it: psql, with thresholds as variables."""
        variables = {"ON_ERROR_STOP": "1", **variables}
        settings = [arg for key, value in variables.items() for arg in ("-v", f"{key}={value}")]
        command = ["psql", "-X", "--csv", *settings, "-f", f"monitoring/sql/{name}", self.db_url]
        return list(csv.DictReader(io.StringIO(run(command, self.stack.project.path).stdout)))

    def dag_health(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        environ = {**os.environ, "AIRFLOW_API_URL": self.stack.url, "AIRFLOW_API_TOKEN": self.stack.token, **env}
        python = str(self.stack.venv / "bin" / "python")
        return run([python, "-m", "scripts.dag_health", *args], self.stack.project.path, environ, check=False)


@pytest.fixture
def observed(baked, tmp_path) -> Iterator[Observed]:
    home = tmp_path
    project = baked("local").copy_to(home)
    shutil.copy(PROBES / f"{PROBE}.py", project.path / "dags")
    release = home / "release-hold"
    with postgres_server(("airflow",)) as urls, statsd_listener() as statsd:
        env = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"].replace("postgresql://", "postgresql+psycopg://"),
            # Only where metrics go is a deployment's choice; every other [metrics] option is the project's.
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port),
            # Four LocalExecutor workers are plenty for the probe on a 2-core machine.
            "AIRFLOW__CORE__PARALLELISM": "4",
            "PROBE_RELEASE_FILE": str(release),
        }
        with airflow_stack(project, home, env) as stack:
            stack.wait_for_dags({PROBE})
            run_id = stack.trigger(PROBE, None)
            observed = Observed(stack, statsd, urls["airflow"], run_id, [])

            def hold_reported_stuck() -> list[dict]:
                rows = observed.sql("stuck_tasks.sql", running_longer_than=HOLD)
                return [row for row in rows if row["task_id"] == "hold"]

            # Released only once the stuck-task query has seen it running for HOLD.
            observed.stuck_while_running = poll(hold_reported_stuck, f"hold running for {HOLD}", timeout=240)
            release.touch()
            assert stack.wait_for_run(PROBE, run_id) == "success", stack.task_instances(PROBE, run_id)
            yield observed


# Rule series a healthy run cannot produce: no task loses its worker's heartbeat, and no task
# stays queued long enough for the 30 s ti.* gauges to see it. test_statsd_mapping.py's registry test proves
# Airflow declares, allows and maps both.
NOT_IN_A_HEALTHY_RUN = {"airflow_task_instances_without_heartbeats_killed_total", "airflow_ti_queued"}


def check_metrics_arrive_under_the_names_the_alert_rules_use(observed: Observed) -> None:
    project = observed.stack.project
    rules = mappings(project)
    wanted = rule_series(project) - NOT_IN_A_HEALTHY_RUN

    def translated() -> list[tuple[str, Sample | None]] | None:
        lines = list(observed.statsd.lines)
        samples = {line: translate(line, rules) for line in set(lines)}
        names = {sample.name for sample in samples.values() if sample}
        return [(line, samples[line]) for line in lines] if wanted <= names else None

    by_line = poll(translated, f"every series in {sorted(wanted)}", timeout=120)
    dropped = sorted({line.split(":")[0] for line, sample in by_line if not sample})
    assert dropped == [], "sent past metrics_allow_list, then dropped by the mapping"
    received = [sample for _, sample in by_line if sample]

    finished = {(s.labels["task_id"], s.labels["state"]) for s in received if s.name == "airflow_ti_finish_total"}
    assert {("produce", "success"), ("hold", "success"), ("flaky", "success")} <= finished
    assert finished & {("flaky", "up_for_retry"), ("flaky", "failed")}, finished
    probe_labels = [s.labels for s in received if s.name == "airflow_ti_finish_total" and s.labels["task_id"] == "hold"]
    assert probe_labels[0]["dag_id"] == PROBE
    assert sum(s.value for s in received if s.name == "airflow_scheduler_heartbeat_total") >= 3
    pools = {s.labels["pool_name"] for s in received if s.name == "airflow_pool_scheduled_slots"}
    assert {"default_pool", "sensor_pool"} <= pools
    assert {s.value for s in received if s.name == "airflow_dag_processing_import_errors"} == {0}
    assert any(s.name == "airflow_task_duration_seconds" and s.labels["task_id"] == "hold" for s in received)


def check_dag_health_reports_the_run_through_the_api(observed: Observed) -> None:
    result = observed.dag_health("--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [dag["dag_id"] for dag in document["dags"]] == [PROBE], "the example DAGs start paused and never ran"
    probe = document["dags"][0]
    assert probe["runs_by_state"] == {"success": 1} and probe["failed_runs"] == 0
    assert probe["task_instances_by_state"] == {"success": 3} and probe["failed_task_instances"] == 0
    assert 0 < probe["run_duration_seconds"]["p50"] <= probe["run_duration_seconds"]["p95"]
    slowest = {task["task_id"]: task for task in probe["slowest_tasks"]}
    assert list(slowest) == sorted(slowest, key=lambda task_id: -slowest[task_id]["p95"])
    assert set(slowest) == {"produce", "flaky", "hold"}
    assert slowest["hold"]["p95"] >= HOLD_SECONDS, "it ran until the test released it"

    table = observed.dag_health("--hours", "1")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith(PROBE))
    assert row.split()[1:3] == ["1", "0"] and "success 3" in row
    assert "Slowest tasks" in table.stdout


def check_dag_health_fails_clearly_without_a_valid_token_or_api(observed: Observed) -> None:
    forged = observed.dag_health(AIRFLOW_API_TOKEN="eyJhbGciOiJIUzUxMiJ9.e30.forged")
    assert forged.returncode == 1 and forged.stdout == ""
    assert "rejected the credentials" in forged.stderr and "Invalid JWT token" in forged.stderr
    password = observed.dag_health(AIRFLOW_API_TOKEN="", AIRFLOW_API_USERNAME="admin", AIRFLOW_API_PASSWORD="wrong")
    assert password.returncode == 1 and "rejected the credentials" in password.stderr
    nowhere = observed.dag_health(AIRFLOW_API_URL=f"http://127.0.0.1:{free_port()}")
    assert nowhere.returncode == 1 and "cannot reach" in nowhere.stderr and "api-server" in nowhere.stderr


def check_diagnostic_queries_return_the_runs_rows(observed: Observed) -> None:
    [hold] = observed.stuck_while_running
    assert (hold["dag_id"], hold["run_id"], hold["problem"]) == (PROBE, observed.run_id, "running too long")
    assert float(hold["minutes_in_state"]) > 0 and int(hold["seconds_since_heartbeat"]) < 60
    assert observed.sql("stuck_tasks.sql", running_longer_than="1 second") == [], "nothing runs any more"

    [rate] = observed.sql("success_rate.sql")
    assert (rate["dag_id"], rate["finished"], rate["succeeded"], rate["failed"]) == (PROBE, "3", "3", "0")
    assert float(rate["success_rate"]) == 1.0
    assert rate["retried_failures"] == "1", "flaky's failed first try is in task_instance_history"

    [xcom] = observed.sql("xcom_size_audit.sql")
    assert (xcom["dag_id"], xcom["task_id"], xcom["key"]) == (PROBE, "produce", "return_value")
    assert xcom["run_id"] == observed.run_id
    assert 10240 <= int(xcom["value_bytes"]) < 65536
    assert len(observed.sql("xcom_size_audit.sql", min_bytes="1")) > 1, "the small XComs show under a lower threshold"

    [lag] = observed.sql("scheduler_lag.sql", min_average_lag="0 seconds")
    assert (lag["dag_id"], lag["runs"]) == (PROBE, "1")
    assert 0 <= float(lag["avg_lag_seconds"]) < 120
    assert observed.sql("scheduler_lag.sql") == [], "the run started well within the default 5 minutes"


# One test, so the deployment is never started twice; each check reports on its own.
CHECKS = (
    check_metrics_arrive_under_the_names_the_alert_rules_use,
    check_dag_health_reports_the_run_through_the_api,
    check_dag_health_fails_clearly_without_a_valid_token_or_api,
    check_diagnostic_queries_return_the_runs_rows,
)


@pytest.mark.airflow
def test_a_probe_run_is_observed_end_to_end(observed, subtests):
    for check in CHECKS:
        with subtests.test(check.__name__.removeprefix("check_")):
            check(observed)
