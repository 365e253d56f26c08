"""deploy/ without a real Airflow: validation, links refused, the parse wait, and secrets kept out of output.

The wait runs against a local HTTP server that answers as the REST API does; the targets are in
test_deploy_targets.py. The template's own tests run the whole deploy against a real Airflow,
a folder and S3.
"""

from __future__ import annotations

import json
import os
import textwrap
from types import SimpleNamespace

import pytest

import deploy.cli
from deploy import DeployError, parse_wait, validate
from deploy.targets import Target
from scripts.airflow_api import AirflowClient, ApiError

from local_servers import Reply, Request, Server, serve

GOOD_DAG = """
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("good", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False, tags=["t"],
         default_args={"owner": "t", "retries": 1}):
    EmptyOperator(task_id="noop", pool="POOL")
"""


def write(folder, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text).lstrip())


def test_help_lists_the_environment_and_takes_no_credentials(capsys):
    with pytest.raises(SystemExit) as exit_:
        deploy.cli.parse_args(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name in ("--dry-run", "--allow-delete", "AIRFLOW_API_URL", "AIRFLOW_API_PASSWORD", "DEPLOY_TARGET_URI"):
        assert name in text
    with pytest.raises(SystemExit):
        deploy.cli.parse_args(["--password", "secret"])


def test_validation_lists_every_problem_and_ships_no_bytecode(tmp_path):
    pools = tmp_path / "pools.json"
    pools.write_text(json.dumps({"default_pool": {"slots": 8}}))
    dags = tmp_path / "dags"
    write(dags, {"good.py": GOOD_DAG.replace("POOL", "default_pool"), "sql/query.sql": "select 1;\n"})
    (dags / "__pycache__").mkdir()
    (dags / "__pycache__" / "good.cpython-312.pyc").write_bytes(b"\0")
    validated = validate.validate(dags, pools)
    assert validated.dag_ids_by_file == {"good.py": {"good"}}
    assert sorted(validated.files) == ["good.py", "sql/query.sql"]

    write(
        dags,
        {
            "good.py": GOOD_DAG.replace("POOL", "undeclared"),
            "broken.py": "import no_such_module\nfrom airflow.sdk import DAG\n",
        },
    )
    with pytest.raises(DeployError) as error:
        validate.validate(dags, pools)
    assert "nothing was deployed" in str(error.value)
    assert "broken.py" in str(error.value) and "no_such_module" in str(error.value)
    assert "undeclared" in str(error.value)


def test_links_and_special_files_in_dags_are_refused_and_never_read(tmp_path):
    secret = tmp_path / "elsewhere" / "credentials"
    secret.parent.mkdir()
    secret.write_text("AWS_SECRET_ACCESS_KEY=never-shipped\n")
    dags = tmp_path / "dags"
    write(dags, {"good.py": "# a DAG\n", "sql/query.sql": "select 1;\n"})
    (dags / "env.txt").symlink_to(secret)
    (dags / "sql" / "shared").symlink_to(secret.parent, target_is_directory=True)
    os.mkfifo(dags / "pipe")  # reading it would block forever
    with pytest.raises(DeployError) as refused:
        validate.local_files(dags)
    message = str(refused.value)
    assert f"env.txt -> {secret}" in message and f"sql/shared -> {secret.parent}" in message
    assert "pipe (not a regular file)" in message and "nothing was deployed" in message
    assert "never-shipped" not in message
    (dags / "env.txt").unlink()
    (dags / "sql" / "shared").unlink()
    (dags / "pipe").unlink()
    assert validate.local_files(dags) == {"good.py": b"# a DAG\n", "sql/query.sql": b"select 1;\n"}


class ParsingApi:
    """/api/v2 as the dag-processor leaves it: each poll (one importErrors call) may see a newer state."""

    def __init__(self, states: list[dict]) -> None:
        self.states = states
        self.polls = 0

    def __call__(self, request: Request) -> Reply:
        if request.path == "/api/v2/importErrors":
            self.polls += 1
        state = self.states[min(self.polls, len(self.states)) - 1]
        if request.path == "/api/v2/importErrors":
            errors = [{"filename": name, "timestamp": stamp} for name, stamp in state.get("errors", {}).items()]
            return Reply(200, {"import_errors": errors, "total_entries": len(errors)})
        if request.path == "/api/v2/dags":
            dags = [{"dag_id": dag_id} for dag_id in state.get("sources", {})]
            return Reply(200, {"dags": dags, "total_entries": len(dags)})
        source = state["sources"][request.path.rsplit("/", 1)[1]]
        if source is None:  # listed, but its source not stored yet
            return Reply(404, {"detail": "The source code of the Dag was not found"})
        return Reply(200, {"content": source})


def parse_wait_against(server: Server, errors_before=None) -> parse_wait.ParseWait:
    deployed = validate.Validated({"a.py": b"new a", "b.py": b"new b"}, {"a.py": {"a"}, "b.py": {"b"}})
    client = AirflowClient(server.url, token="t")
    ticks = iter(range(0, 10_000, 3))
    wait = parse_wait.ParseWait(client, Target(), "bundle", deployed, errors_before or {})
    wait.clock, wait.sleep = lambda: next(ticks), lambda seconds: None
    return wait


def test_waits_until_every_file_is_parsed_as_deployed():
    api = ParsingApi(
        [
            {"sources": {"a": "old a"}},
            {"sources": {"a": "new a", "b": "old b"}},
            {"sources": {"a": "new a", "b": "new b"}},
        ]
    )
    with serve(api) as server:
        parse_wait_against(server).run(timeout=60)
    assert api.polls == 3
    assert {request.query["bundle_name"][0] for request in server.requests if request.query} == {"bundle"}


def test_a_dag_listed_before_its_source_is_stored_is_waited_for():
    api = ParsingApi([{"sources": {"a": "new a", "b": None}}, {"sources": {"a": "new a", "b": "new b"}}])
    with serve(api) as server:
        parse_wait_against(server).run(timeout=60)
    assert api.polls == 2


def test_a_fresh_import_error_ends_the_wait_and_a_stale_one_does_not():
    fresh = ParsingApi([{"sources": {"a": "new a"}, "errors": {"b.py": "2026-01-01T10:05:00Z"}}])
    with serve(fresh) as server:
        parse_wait_against(server, errors_before={"b.py": "2026-01-01T10:00:00Z"}).run(timeout=60)
    stale = ParsingApi([{"sources": {"a": "new a"}, "errors": {"b.py": "2026-01-01T10:00:00Z"}}])
    with serve(stale) as server, pytest.raises(DeployError, match=r"not parsed these within 30 s:\n  b.py"):
        parse_wait_against(server, errors_before={"b.py": "2026-01-01T10:00:00Z"}).run(timeout=30)


def test_waits_for_the_import_errors_of_deleted_files_to_clear():
    api = ParsingApi(
        [
            {"sources": {"a": "new a", "b": "new b"}, "errors": {"removed.py": "2026-01-01T10:00:00Z"}},
            {"sources": {"a": "new a", "b": "new b"}},
        ]
    )
    with serve(api) as server:
        parse_wait_against(server).run(timeout=60)
    assert api.polls == 2


def test_reparse_requests_name_the_uploaded_files_or_any_deployed_file_of_the_bundle():
    calls = []
    client = SimpleNamespace(request=lambda method, path: calls.append((method, path)))
    known = {
        "a": {"relative_fileloc": "a.py", "file_token": "token-a"},
        "b": {"relative_fileloc": "b.py", "file_token": "token-b"},
        "gone": {"relative_fileloc": "gone.py", "file_token": "token-gone"},
    }
    deployed = ["a.py", "b.py", "new.py"]
    assert parse_wait.request_reparse(client, known, ["b.py", "new.py"], deployed) == 1
    assert calls == [("PUT", "/api/v2/parseDagFile/token-b")]
    # Any request refreshes the whole bundle, which finds new files; a deleted file is never asked for.
    assert parse_wait.request_reparse(client, known, ["new.py"], deployed) == 1
    assert parse_wait.request_reparse(client, {"gone": known["gone"]}, ["new.py"], deployed) == 0
    assert parse_wait.request_reparse(client, {}, ["new.py"], deployed) == 0
    assert calls[1][1] in ("/api/v2/parseDagFile/token-a", "/api/v2/parseDagFile/token-b")


def test_secrets_never_reach_the_output(monkeypatch, tmp_path, capsys):
    # Even when an error message echoes a credential, the report prints *** instead.
    def echo_password(environ, **options):
        raise ApiError(f"login refused for password {environ['AIRFLOW_API_PASSWORD']}")

    monkeypatch.setattr(deploy.cli, "validate", lambda: validate.Validated({"a.py": b""}, {"a.py": {"a"}}))
    monkeypatch.setattr(AirflowClient, "from_environment", echo_password)
    environ = {"AIRFLOW_API_PASSWORD": "hunter2-very-secret", "DEPLOY_TARGET_URI": str(tmp_path / "volume")}
    assert deploy.cli.main(["--target", "volume"], environ) == 1
    output = capsys.readouterr()
    assert "login refused for password ***" in output.err
    assert "hunter2-very-secret" not in output.out + output.err
    assert not (tmp_path / "volume").exists()


def test_the_deploy_refuses_plain_http_to_another_host_before_any_request(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(deploy.cli, "validate", lambda: validate.Validated({"a.py": b""}, {"a.py": {"a"}}))
    environ = {
        "AIRFLOW_API_URL": "http://airflow.example.com",
        "AIRFLOW_API_TOKEN": "eyJhbGciOiJIUzUxMiJ9.e30.signature",  # pragma: allowlist secret
        "DEPLOY_TARGET_URI": str(tmp_path / "volume"),
    }
    assert deploy.cli.main(["--target", "volume"], environ) == 1
    assert "AIRFLOW_API_URL=http://airflow.example.com uses plain http" in capsys.readouterr().err
