"""Monitoring and operations: metrics config, alert rules, the health report, diagnostics, runbooks.

Render tier: promtool checks the alert rules and runs their unit tests; every series a rule
reads is one the statsd_exporter mapping produces; every rule links a runbook that exists.
Airflow tier: the mapping, `[metrics] metrics_allow_list` and Airflow's own metrics registry
agree; every `airflow` command the runbooks cite parses in Airflow's CLI. Run tier: one real
deployment with StatsD pointed at a UDP listener here runs a probe DAG; its metrics arrive
under the names the rules use once translated through the mapping, scripts/dag_health.py
reports the run through the REST API, and each monitoring/sql query returns the run's rows from
the real metadata DB.
"""

from __future__ import annotations

import configparser
import contextlib
import csv
import io
import json
import os
import re
import shlex
import socket
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import yaml
from airflow_stack import AirflowStack, airflow_stack
from conftest import BakedProject, project_venv, run
from services import free_port, poll, postgres_server

RULE_VARIANTS = pytest.mark.parametrize("variant", ["local", "kubernetes"])  # metrics: statsd, otel
RULES = "monitoring/prometheus/airflow_rules.yaml"
RULE_TESTS = "monitoring/prometheus/airflow_rules_test.yaml"
MAPPING = "monitoring/statsd_mapping.yaml"
PROMTOOL = "promtool"  # Debian's prometheus package; .ci/run installs it
SERIES = re.compile(r"\bairflow_[a-z0-9_]+")
# statsd_exporter's line types -> the metric type a mapping's match_metric_type names.
STATSD_TYPES = {"c": "counter", "g": "gauge", "ms": "observer", "h": "observer", "d": "observer"}


# ── Reading the monitoring files ──────────────────────────────────────────────────────────────


def last_json_line(stdout: str):
    # Airflow may log a warning to stdout before the probe prints its answer, its last line.
    return json.loads(stdout.strip().splitlines()[-1])


def alert_rules(project: BakedProject) -> list[dict]:
    groups = yaml.safe_load(project.read(RULES))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def rule_series(project: BakedProject) -> set[str]:
    return {name for rule in alert_rules(project) for name in SERIES.findall(rule["expr"])}


@dataclass
class Mapping:
    """One statsd_exporter mapping rule, matched the way the exporter matches it."""

    match: str
    glob: bool
    name: str
    metric_type: str | None
    labels: dict[str, str]
    drop: bool
    pattern: re.Pattern

    @classmethod
    def load(cls, rule: dict, defaults: dict) -> Mapping:
        glob = rule.get("match_type", defaults.get("match_type", "glob")) == "glob"
        if glob:
            # A glob's `*` stands for exactly one dot-separated component.
            parts = ["([^.]+)" if part == "*" else re.escape(part) for part in rule["match"].split(".")]
            pattern = re.compile(r"\.".join(parts) + "$")
        else:
            pattern = re.compile(rule["match"])
        return cls(
            match=rule["match"],
            glob=glob,
            name=rule["name"],
            metric_type=rule.get("match_metric_type"),
            labels=rule.get("labels", {}),
            drop=rule.get("action") == "drop",
            pattern=pattern,
        )

    def series(self) -> set[str]:
        """The Prometheus series names this mapping produces."""
        if self.drop:
            return set()
        if self.metric_type == "observer":
            return {f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"}
        return {self.name}


def mappings(project: BakedProject) -> list[Mapping]:
    document = yaml.safe_load(project.read(MAPPING))
    rules = [Mapping.load(rule, document.get("defaults", {})) for rule in document["mappings"]]
    # The exporter tries every glob rule, in file order, before any regex rule.
    return [rule for rule in rules if rule.glob] + [rule for rule in rules if not rule.glob]


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def expand(template: str, captures: tuple[str, ...]) -> str:
    """Fill in a mapping's $1 or ${1} references to the match's captures."""
    return re.sub(r"\$\{?(\d+)\}?", lambda reference: captures[int(reference[1]) - 1], template)


def translate(line: str, rules: list[Mapping]) -> Sample | None:
    """A StatsD line as statsd_exporter turns it into a sample; None when a rule drops it.

    InfluxDB-style tags (`name,tag=value:1|c`) become labels, as the exporter parses them.
    """
    head, _, rest = line.partition(":")
    statsd_name, *tags = head.split(",")
    labels = dict(tag.split("=", 1) for tag in tags)
    value, statsd_type = rest.split("|")[:2]
    metric_type = STATSD_TYPES[statsd_type]
    for rule in rules:
        matched = rule.pattern.match(statsd_name)
        if not matched or rule.metric_type not in (None, metric_type):
            continue
        if rule.drop:
            return None
        labels |= {key: expand(template, matched.groups()) for key, template in rule.labels.items()}
        return Sample(expand(rule.name, matched.groups()), labels, float(value))
    raise AssertionError(f"no mapping rule, not even the catch-all, matched {line!r}")


# ── Render tier ───────────────────────────────────────────────────────────────────────────────


@RULE_VARIANTS
def test_alert_rules_pass_promtool_check_and_their_unit_tests(baked, variant):
    project = baked(variant)
    checked = run([PROMTOOL, "check", "rules", RULES], cwd=project.path)
    assert f"SUCCESS: {len(alert_rules(project))} rules found" in checked.stdout
    tested = run([PROMTOOL, "test", "rules", RULE_TESTS], cwd=project.path)
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test(baked):
    project = baked("local")
    alerts = {rule["alert"] for rule in alert_rules(project)}
    cases = [case for test in yaml.safe_load(project.read(RULE_TESTS))["tests"] for case in test["alert_rule_test"]]
    fires = {case["alertname"] for case in cases if case["exp_alerts"]}
    stays_quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert alerts == fires == stays_quiet
    assert len(alerts) >= 8


def test_the_unit_tests_catch_a_changed_threshold(baked, tmp_path):
    project = baked("local").copy_to(tmp_path)
    rules = project.path / RULES
    rules.write_text(rules.read_text().replace("> 0.2", "> 0.5", 1))
    result = run([PROMTOOL, "test", "rules", RULE_TESTS], cwd=project.path, check=False)
    assert result.returncode != 0 and "AirflowTaskFailureRateHigh" in result.stdout + result.stderr


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors for a page's headings."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    return {re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-") for heading in headings}


@RULE_VARIANTS
def test_every_alert_links_a_runbook_that_exists(baked, variant):
    project = baked(variant)
    for rule in alert_rules(project):
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert (project.path / path).is_file(), f"{rule['alert']}: {path} does not exist"
        page = project.read(path)
        assert rule["alert"] in page, f"{path} does not mention {rule['alert']}"
        assert not anchor or anchor in heading_anchors(page), f"{rule['alert']}: no heading #{anchor} in {path}"
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]


def test_rules_read_only_series_the_statsd_mapping_produces(baked):
    project = baked("local")
    produced = {series for rule in mappings(project) for series in rule.series()}
    assert rule_series(project) <= produced, rule_series(project) - produced
    assert mappings(project)[-1].drop and mappings(project)[-1].match == ".", "unmapped metrics must be dropped"


def test_the_translation_follows_the_mapping(baked):
    rules = mappings(baked("local"))
    finish = translate("airflow.ti.finish,dag_id=etl,task_id=load,state=failed:1|c", rules)
    assert finish.name == "airflow_ti_finish_total"
    assert finish.labels == {"dag_id": "etl", "task_id": "load", "state": "failed"}
    run_time = translate("airflow.dagrun.duration.success,dag_id=etl:1500|ms", rules)
    assert run_time.name == "airflow_dagrun_duration_seconds"
    assert run_time.labels == {"dag_id": "etl", "state": "success"}
    slots = translate("airflow.executor.open_slots.CeleryExecutor,executor_class_name=CeleryExecutor:3|g", rules)
    assert slots.name == "airflow_executor_open_slots"
    assert translate("airflow.scheduler_heartbeat:1|g", rules) is None, "a type the mapping does not expect is dropped"
    assert translate("airflow.dag_processing.last_duration,file_name=x:1|ms", rules) is None


METRICS_VARIANTS = pytest.mark.parametrize("variant", ["local", "kubernetes", "no-examples"])


@METRICS_VARIANTS
def test_metrics_config_follows_the_choice(baked, variant):
    project = baked(variant)
    choice = project.answer("metrics")
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(project.read("config/airflow.cfg"))
    metrics = dict(cfg["metrics"]) if cfg.has_section("metrics") else {}
    compose = yaml.safe_load(project.read("docker-compose.yaml"))
    airflow_env = compose["x-airflow-common"]["environment"]
    requirements = project.read("requirements.txt").splitlines()
    if choice == "none":
        assert metrics == {}
    else:
        assert metrics["legacy_names_on"] == "False"
        patterns = [pattern.strip() for pattern in metrics["metrics_allow_list"].split(",")]
        assert all(patterns), "an empty pattern, as from a trailing comma, would allow every metric"
    if choice == "statsd":
        assert metrics["statsd_on"] == "True" and metrics["statsd_influxdb_enabled"] == "True"
        assert (metrics["statsd_host"], metrics["statsd_port"]) == ("localhost", "9125")
        assert airflow_env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"
        exporter = compose["services"]["statsd-exporter"]
        mounts = dict(volume.split(":")[:2] for volume in exporter["volumes"])
        assert f"--statsd.mapping-config={mounts['./' + MAPPING]}" in exporter["command"]
        assert "statsd" in requirements
    else:
        assert "statsd_on" not in metrics and "AIRFLOW__METRICS__STATSD_HOST" not in airflow_env
        assert "statsd" not in requirements
    assert (metrics.get("otel_on") == "True") is (choice == "otel")
    # Without a collector in the stack, OpenTelemetry would fail every export: compose switches it off.
    assert (airflow_env.get("AIRFLOW__METRICS__OTEL_ON") == "False") is (choice == "otel")


def test_otel_collector_serves_otlp_to_prometheus(baked):
    project = baked("kubernetes")
    collector = yaml.safe_load(project.read("monitoring/otel-collector.yaml"))
    pipeline = collector["service"]["pipelines"]["metrics"]
    assert pipeline["receivers"] == ["otlp"] and pipeline["exporters"] == ["prometheus"]
    assert collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    assert collector["exporters"]["prometheus"]["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert "otel-collector.yaml" in project.read(RULES)


def test_the_collector_run_line_publishes_on_loopback_only(baked):
    # OTLP accepts writes from anyone who reaches it, and the exporter serves every series.
    text = baked("kubernetes").read("monitoring/otel-collector.yaml").replace("\\\n#", " ")
    run_line = re.search(r"docker run (.*?)otel/opentelemetry-collector", text, re.S)[1]
    published = re.findall(r"(?:-p|--publish)\s+(\S+)", run_line)
    assert published and all(port.startswith("127.0.0.1:") for port in published), published


@pytest.mark.parametrize("variant", ["kubernetes", "hybrid"])  # metrics: otel, statsd
def test_helm_sends_metrics_where_the_choice_says(baked, variant):
    # On Kubernetes, cfg's localhost defaults reach nothing: the values must name the receiver.
    project = baked(variant)
    values = yaml.safe_load(project.read("deploy/helm/values.yaml"))
    env = yaml.safe_load(values["extraConfigMaps"]["airflow-runtime-env"]["data"])
    choice = project.answer("metrics")
    assert values["statsd"]["enabled"] is (choice == "statsd")
    assert ("AIRFLOW__METRICS__STATSD_HOST" in env) is (choice == "statsd")
    assert ("OTEL_EXPORTER_OTLP_ENDPOINT" in env) is (choice == "otel")
    if choice == "statsd":
        # The chart hands its exporter only the mapping list; each rule must stand on its own.
        assert yaml.safe_load(project.read(MAPPING)).get("defaults") == {"match_type": "glob"}


# ── Airflow tier ──────────────────────────────────────────────────────────────────────────────

# Airflow's metrics registry and its allow-list validator, read in the project's own venv with
# the project's config. Each candidate is tested bare and with an InfluxDB tag, as StatsD sends it.
REGISTRY_PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import yaml
    from airflow._shared.observability.metrics import validators
    from airflow.configuration import conf
    registry = yaml.safe_load((Path(validators.__file__).parent / "metrics_template.yaml").read_text())["metrics"]
    allow = validators.get_validator(conf.get("metrics", "metrics_allow_list"), None)
    names = [metric["name"] for metric in registry if "{" not in metric["name"]]
    # With several executors, Airflow appends the executor's class to executor.* names.
    names += [name + ".CeleryExecutor" for name in names if name.startswith("executor.")]
    print(json.dumps({
        "types": {metric["name"]: metric["type"] for metric in registry},
        "allowed": {name: allow.test(name) and allow.test(name + ",dag_id=example") for name in names},
    }))
    """
)
REGISTRY_TYPES = {"counter": "counter", "gauge": "gauge", "timer": "observer"}


@pytest.mark.airflow
def test_mapping_allow_list_and_airflow_registry_agree(baked):
    project = baked("local")
    venv = project_venv(project)
    env = {**os.environ, "AIRFLOW_CONFIG": str(project.path / "config" / "airflow.cfg")}
    probe = last_json_line(run([str(venv / "bin" / "python"), "-c", REGISTRY_PROBE], project.path, env).stdout)
    allowed = {name for name, passes in probe["allowed"].items() if passes}
    mapped = set()
    for rule in mappings(project):
        if rule.drop:
            continue
        names = {name for name in probe["allowed"] if rule.pattern.match("airflow." + name)}
        assert names, f"{rule.match} maps no metric Airflow declares"
        for name in names:
            declared = probe["types"].get(name) or probe["types"][name.rsplit(".", 1)[0]]
            assert REGISTRY_TYPES[declared] == rule.metric_type, f"{rule.match}: Airflow sends a {declared}"
        mapped |= names
    assert allowed - mapped == set(), "allowed by metrics_allow_list but dropped by the mapping"
    assert mapped - allowed == set(), "mapped, but metrics_allow_list never sends it"


def runbook_commands(project: BakedProject) -> set[tuple[str, ...]]:
    """Every `airflow ...` command in the runbooks' code (blocks and inline) and the rules' text."""
    pages = (project.path / "docs" / "runbooks").glob("*.md")
    texts = [page.read_text() for page in pages]
    if (project.path / RULES).exists():
        texts.append(project.read(RULES))
    snippets = []
    for text in texts:
        for block in re.findall(r"^ *```bash\n(.*?)^ *```", text, re.M | re.S):
            snippets += block.replace("\\\n", " ").splitlines()
        snippets += re.findall(r"(?<!`)`(airflow [^`]+)`", text)
    commands = set()
    for snippet in snippets:
        snippet = snippet.strip().split(" #", 1)[0]
        if snippet.startswith("airflow "):
            commands.add(tuple(shlex.split(snippet)[1:]))
    return commands


# Airflow's own OpenTelemetry logger, set up as every component sets it up from the project's
# config, exports the given metrics over OTLP/HTTP to a local receiver; the receiver decodes each
# metric's name, kind, unit and attribute names with OpenTelemetry's protobuf definitions.
OTLP_PROBE = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    exports = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            exports.append(ExportMetricsServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_address[1]}"
    os.environ["OTEL_METRIC_EXPORT_INTERVAL"] = "200"

    from airflow._shared.observability.metrics import stats
    from airflow.configuration import conf
    from airflow.observability.metrics import stats_utils

    legacy_names = conf.getboolean("metrics", "legacy_names_on")
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=legacy_names)
    wanted = json.load(sys.stdin)
    for name, kind, tags in wanted:
        {"counter": stats.incr, "gauge": lambda name, tags: stats.gauge(name, 3, tags=tags)}[kind](name, tags=tags)

    metrics, deadline = {}, time.monotonic() + 60
    while len(metrics) < len(wanted) and time.monotonic() < deadline:
        time.sleep(0.2)
        for export in list(exports):
            for resource in export.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        kind = metric.WhichOneof("data")
                        points = getattr(metric, kind).data_points
                        metrics[metric.name] = {
                            "kind": kind,
                            "monotonic": kind == "sum" and metric.sum.is_monotonic,
                            "unit": metric.unit,
                            "attributes": sorted({attribute.key for point in points for attribute in point.attributes}),
                        }
    print(json.dumps(metrics))
    os._exit(0)  # not another export at exit, to a receiver that is gone
    """
)


def prometheus_name(otel_name: str, metric: dict) -> str:
    """The collector's Prometheus exporter's name for a metric (UnderscoreEscapingWithSuffixes)."""
    name = re.sub(r"[^a-zA-Z0-9_]", "_", otel_name)
    return name + "_total" if metric["monotonic"] else name


@pytest.mark.airflow
def test_opentelemetry_metrics_reach_prometheus_under_the_names_the_rules_use(baked, tmp_path):
    project = baked("kubernetes")
    assert project.answer("metrics") == "otel"
    venv = project_venv(project)
    # What the rules read, as Airflow names and types it: the StatsD variant's mapping records both.
    wanted = [
        (rule.match.removeprefix("airflow."), rule.metric_type, {"dag_id": "etl"})
        for rule in mappings(baked("local"))
        if rule.series() & rule_series(project)
    ]
    assert len(wanted) == len(rule_series(project))
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW_CONFIG": str(project.path / "config" / "airflow.cfg")}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", OTLP_PROBE],
        input=json.dumps(wanted),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    exported = last_json_line(result.stdout)
    served = {prometheus_name(name, metric) for name, metric in exported.items()}
    assert served == rule_series(project)
    assert all(metric["attributes"] == ["dag_id"] for metric in exported.values()), "tags travel as labels"


# For each command: its subcommand path exists and prints help; the whole command line, with
# its options and placeholder arguments, parses (nothing runs).
CLI_PROBE = textwrap.dedent(
    """
    import argparse, contextlib, io, json, sys
    from airflow.cli.cli_parser import get_parser
    parser = get_parser()

    def subcommands(p):
        return next((a.choices for a in p._actions if isinstance(a, argparse._SubParsersAction)), {})

    def parse(args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                parser.parse_args(args)
                return 0, out.getvalue()
            except SystemExit as exit:
                return exit.code, out.getvalue()

    results = []
    for args in json.load(sys.stdin):
        path, current = [], parser
        for word in args:
            if word not in subcommands(current):
                break
            path.append(word)
            current = subcommands(current)[word]
        help_code, help_text = parse([*path, "--help"])
        parse_code, parse_text = parse(args)
        results.append({"args": args, "path": path, "help_code": help_code, "help": help_text[:400],
                        "leaf": not subcommands(current), "parse_code": parse_code, "parse": parse_text[-400:]})
    print(json.dumps(results))
    """
)


# Airflow 2 commands that runbooks written for it cite, which Airflow 3.3 no longer has: the check must refuse them.
GONE_IN_AIRFLOW_3 = [("tasks", "mark-success", "my_dag", "my_task", "2024-01-15"), ("scheduler", "--do-pickle")]


@pytest.mark.airflow
def test_every_cli_command_the_runbooks_cite_exists(baked, tmp_path):
    project = baked("local")
    venv = project_venv(project)
    commands = sorted(runbook_commands(project))
    assert len(commands) >= 15 and ("dags", "list-import-errors") in commands
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW_CONFIG": str(project.path / "config" / "airflow.cfg")}
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CLI_PROBE],
        input=json.dumps(commands + GONE_IN_AIRFLOW_3),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    *cited, mark_success, do_pickle = last_json_line(result.stdout)
    for checked in cited:
        command = "airflow " + " ".join(checked["args"])
        assert checked["path"] and checked["leaf"], f"{command}: no such command in Airflow's CLI"
        assert checked["help_code"] == 0, f"{command}: --help failed\n{checked['help']}"
        assert "airflow " + " ".join(checked["path"]) in " ".join(checked["help"].split()), checked["help"]
        assert checked["parse_code"] == 0, f"{command}: does not parse\n{checked['parse']}"
    assert not mark_success["leaf"] and mark_success["parse_code"] != 0
    assert do_pickle["leaf"] and do_pickle["help_code"] == 0 and do_pickle["parse_code"] != 0


# ── Run tier: one deployment, one probe run ───────────────────────────────────────────────────

# produce's XCom (about 20 KB of JSON) stays in the metadata DB, under the 64 KiB object-storage
# threshold; flaky fails its first try; hold keeps running until the test releases it, so the
# stuck-task query has something to find.
PROBE_DAG = """
import os
import time
from pathlib import Path

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, tags=["test"],
     default_args={"owner": "tests", "retries": 1, "retry_delay": 1})
def observability_probe():
    @task
    def produce():
        return list(range(4000))

    @task
    def flaky(ti=None):
        if ti.try_number == 1:
            raise RuntimeError("the first try fails on purpose")

    @task
    def hold(rows):
        release, deadline = Path(os.environ["PROBE_RELEASE_FILE"]), time.monotonic() + 300
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        return len(rows)

    hold(produce())
    flaky()


observability_probe()
"""
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
    (project.path / "dags" / f"{PROBE}.py").write_text(textwrap.dedent(PROBE_DAG))
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
# stays queued long enough for the 30 s ti.* gauges to see it. The registry test above proves
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
