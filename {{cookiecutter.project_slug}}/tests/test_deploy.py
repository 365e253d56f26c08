"""deploy/deploy.py without a server: validation, sync plans, the parse wait, and secrets kept out of output.

Every target's logic runs against local stand-ins here (fake S3 and GCS clients, a temporary git
repository); the template's own tests run the whole deploy against a real Airflow, a folder and S3.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from conftest import PROJECT_ROOT

spec = importlib.util.spec_from_file_location("deploy", PROJECT_ROOT / "deploy" / "deploy.py")
deploy = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = deploy  # dataclasses look their module up there
spec.loader.exec_module(deploy)

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
        deploy.parse_args(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name in ("--dry-run", "AIRFLOW_API_URL", "AIRFLOW_API_PASSWORD", "DEPLOY_TARGET_URI", "DEPLOY_BUNDLE_NAME"):
        assert name in text
    with pytest.raises(SystemExit):
        deploy.parse_args(["--password", "secret"])


def test_validation_lists_every_problem_and_ships_no_bytecode(tmp_path):
    pools = tmp_path / "pools.json"
    pools.write_text(json.dumps({"default_pool": {"slots": 8}}))
    dags = tmp_path / "dags"
    write(dags, {"good.py": GOOD_DAG.replace("POOL", "default_pool"), "sql/query.sql": "select 1;\n"})
    (dags / "__pycache__").mkdir()
    (dags / "__pycache__" / "good.cpython-312.pyc").write_bytes(b"\0")
    validated = deploy.validate(dags, pools)
    assert validated.dag_ids_by_file == {"good.py": {"good"}}
    assert sorted(validated.files) == ["good.py", "sql/query.sql"]

    write(
        dags,
        {
            "good.py": GOOD_DAG.replace("POOL", "undeclared"),
            "broken.py": "import no_such_module\nfrom airflow.sdk import DAG\n",
        },
    )
    with pytest.raises(deploy.DeployError) as error:
        deploy.validate(dags, pools)
    assert "nothing was deployed" in str(error.value)
    assert "broken.py" in str(error.value) and "no_such_module" in str(error.value)
    assert "undeclared" in str(error.value)


def test_object_plan_uploads_new_and_changed_files_and_deletes_orphans():
    files = {"same.py": b"same", "changed.py": b"new", "new.py": b"x"}
    stored = {"same.py": hashlib.md5(b"same").hexdigest(), "changed.py": hashlib.md5(b"old").hexdigest(), "gone.py": ""}
    plan = deploy.plan_objects(files, stored)
    assert plan == deploy.SyncPlan(upload=["changed.py", "new.py"], delete=["gone.py"], unchanged=1)


class FakeS3:
    """The four boto3 S3 client calls the store makes, over a dict of key -> bytes."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = dict(objects)
        self.calls: list[str] = []

    def get_paginator(self, operation):
        def paginate(Bucket, Prefix):  # noqa: N803 (boto3's argument names)
            keys = sorted(key for key in self.objects if key.startswith(Prefix))
            etags = [f'"{hashlib.md5(self.objects[key]).hexdigest()}"' for key in keys]
            yield {"Contents": [{"Key": key, "ETag": etag} for key, etag in zip(keys, etags, strict=True)]}

        return SimpleNamespace(paginate=paginate)

    def put_object(self, Bucket, Key, Body, ContentMD5):  # noqa: N803
        assert base64.b64decode(ContentMD5) == hashlib.md5(Body).digest()
        self.calls.append(f"put {Key}")
        self.objects[Key] = Body

    def delete_objects(self, Bucket, Delete):  # noqa: N803
        self.calls += [f"delete {item['Key']}" for item in Delete["Objects"]]
        for item in Delete["Objects"]:
            del self.objects[item["Key"]]
        return {}


class FakeGcs:
    """The google-cloud-storage client calls the store makes, over a dict of name -> bytes."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = dict(objects)
        self.calls: list[str] = []

    def list_blobs(self, bucket, prefix):
        for name in sorted(self.objects):
            if name.startswith(prefix):
                md5 = base64.b64encode(hashlib.md5(self.objects[name]).digest()).decode()
                yield SimpleNamespace(name=name, md5_hash=md5)

    def bucket(self, name):
        fake = self

        class Blob:
            def __init__(self, key):
                self.key = key

            def upload_from_string(self, data):
                fake.calls.append(f"put {self.key}")
                fake.objects[self.key] = data

            def delete(self):
                fake.calls.append(f"delete {self.key}")
                del fake.objects[self.key]

        return SimpleNamespace(blob=Blob)


@pytest.mark.parametrize(("store", "fake"), [(deploy.S3Store, FakeS3), (deploy.GcsStore, FakeGcs)])
def test_object_store_sync_converges_writing_before_deleting(store, fake):
    client = fake({"dags/same.py": b"same", "dags/old.py": b"old", "dags/gone.py": b"", "other/keep.py": b"not ours"})
    target = deploy.ObjectStoreTarget("bucket/dags", store("bucket", "dags/", client))
    files = {"same.py": b"same", "old.py": b"new", "sub/new.py": b"x"}
    plan = target.plan(files)
    assert plan == deploy.SyncPlan(upload=["old.py", "sub/new.py"], delete=["gone.py"], unchanged=1)
    target.apply(plan, files)
    assert client.calls == ["put dags/old.py", "put dags/sub/new.py", "delete dags/gone.py"]
    assert client.objects == {f"dags/{name}": data for name, data in files.items()} | {"other/keep.py": b"not ours"}
    assert target.plan(files) == deploy.SyncPlan([], [], unchanged=3)


def test_store_errors_become_a_clear_failure():
    class Refusing(FakeS3):
        def put_object(self, **kwargs):
            raise PermissionError("AccessDenied")

    target = deploy.ObjectStoreTarget("s3://b/dags", deploy.S3Store("b", "dags/", Refusing({}), (PermissionError,)))
    with pytest.raises(deploy.DeployError, match="failed part-way: AccessDenied; run the deploy again"):
        target.apply(deploy.SyncPlan(["a.py"], [], 0), {"a.py": b""})


def test_rsync_itemized_output_becomes_the_plan():
    output = "cd+++++++++ sql/\n>f+++++++++ sql/q.sql\n>fcsT...... a.py\n*deleting   old.py\ncreated directory x\n"
    assert deploy.parse_itemized(output) == (["a.py", "sql/q.sql"], ["old.py"])


@pytest.mark.parametrize(
    ("kind", "uri", "problem"),
    [
        ("volume", "", "set DEPLOY_TARGET_URI"),
        ("s3", "gs://bucket/dags", "must look like s3://bucket/prefix"),
        ("gcs", "s3://bucket/dags", "must look like gs://bucket/prefix"),
        ("volume", "s3://bucket/dags", "needs a path or an rsync destination"),
    ],
)
def test_bad_target_uris_are_refused(kind, uri, problem):
    with pytest.raises(deploy.DeployError, match=problem):
        deploy.make_target(kind, {"DEPLOY_TARGET_URI": uri})


def test_bucket_uris_split_into_bucket_and_prefix():
    assert deploy.split_bucket_uri("s3://b/team/dags/", "s3") == ("b", "team/dags/")
    assert deploy.split_bucket_uri("gs://b", "gs") == ("b", "")


class FakeApi:
    """/api/v2 as the dag-processor leaves it: each poll may see a newer state."""

    def __init__(self, states: list[dict]) -> None:
        self.states = states
        self.polls = 0

    def request(self, method, path, body=None):
        if path.startswith("/api/v2/importErrors"):  # the first call of each poll
            self.polls += 1
        state = self.states[min(self.polls, len(self.states)) - 1]
        if path.startswith("/api/v2/importErrors"):
            errors = [{"filename": name, "timestamp": stamp} for name, stamp in state.get("errors", {}).items()]
            return {"import_errors": errors, "total_entries": len(errors)}
        if path.startswith("/api/v2/dags?"):
            dags = [{"dag_id": dag_id} for dag_id in state.get("sources", {})]
            return {"dags": dags, "total_entries": len(dags)}
        if path.startswith("/api/v2/dagSources/"):
            return {"content": state["sources"][path.rsplit("/", 1)[1]]}
        raise AssertionError(path)


def parse_wait(api, errors_before=None):
    deployed = deploy.Validated({"a.py": b"new a", "b.py": b"new b"}, {"a.py": {"a"}, "b.py": {"b"}})
    ticks = iter(range(0, 10_000, 3))
    wait = deploy.ParseWait(api, deploy.Target(), "bundle", deployed, errors_before or {})
    wait.clock, wait.sleep = lambda: next(ticks), lambda seconds: None
    return wait


def test_waits_until_every_file_is_parsed_as_deployed():
    api = FakeApi(
        [
            {"sources": {"a": "old a"}},
            {"sources": {"a": "new a", "b": "old b"}},
            {"sources": {"a": "new a", "b": "new b"}},
        ]
    )
    parse_wait(api).run(timeout=60)
    assert api.polls == 3


def test_a_fresh_import_error_ends_the_wait_and_a_stale_one_does_not():
    fresh = FakeApi([{"sources": {"a": "new a"}, "errors": {"b.py": "2026-01-01T10:05:00Z"}}])
    parse_wait(fresh, errors_before={"b.py": "2026-01-01T10:00:00Z"}).run(timeout=60)
    stale = FakeApi([{"sources": {"a": "new a"}, "errors": {"b.py": "2026-01-01T10:00:00Z"}}])
    with pytest.raises(deploy.DeployError, match=r"not parsed these within 30 s:\n  b.py"):
        parse_wait(stale, errors_before={"b.py": "2026-01-01T10:00:00Z"}).run(timeout=30)


def test_waits_for_the_import_errors_of_deleted_files_to_clear():
    api = FakeApi(
        [
            {"sources": {"a": "new a", "b": "new b"}, "errors": {"removed.py": "2026-01-01T10:00:00Z"}},
            {"sources": {"a": "new a", "b": "new b"}},
        ]
    )
    parse_wait(api).run(timeout=60)
    assert api.polls == 2


def test_reparse_requests_name_the_uploaded_files_or_any_deployed_file_of_the_bundle():
    calls = []
    api = SimpleNamespace(request=lambda method, path: calls.append((method, path)))
    known = {
        "a": {"relative_fileloc": "a.py", "file_token": "token-a"},
        "b": {"relative_fileloc": "b.py", "file_token": "token-b"},
        "gone": {"relative_fileloc": "gone.py", "file_token": "token-gone"},
    }
    deployed = ["a.py", "b.py", "new.py"]
    assert deploy.request_reparse(api, known, ["b.py", "new.py"], deployed) == 1
    assert calls == [("PUT", "/api/v2/parseDagFile/token-b")]
    # Any request refreshes the whole bundle, which finds new files; a deleted file is never asked for.
    assert deploy.request_reparse(api, known, ["new.py"], deployed) == 1
    assert deploy.request_reparse(api, {"gone": known["gone"]}, ["new.py"], deployed) == 0
    assert deploy.request_reparse(api, {}, ["new.py"], deployed) == 0
    assert calls[1][1] in ("/api/v2/parseDagFile/token-a", "/api/v2/parseDagFile/token-b")


def git(repository, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repository, check=True)


def test_git_bundle_deploys_only_committed_dags_and_waits_for_that_commit(tmp_path):
    write(tmp_path, {"dags/a.py": "# a DAG\n"})
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "--quiet", "-m", "dags")
    target = deploy.GitBundleTarget(tmp_path)
    assert target.plan({"a.py": b""}) == deploy.SyncPlan([], [], 1)
    assert target.serves(None, {"bundle_version": target.commit}, "")
    assert not target.serves(None, {"bundle_version": "0" * 40}, "")
    write(tmp_path, {"dags/a.py": "# changed, not committed\n"})
    with pytest.raises(deploy.DeployError, match="uncommitted changes"):
        target.plan({"a.py": b""})


def test_secrets_never_reach_the_output(monkeypatch, tmp_path, capsys):
    # Even when an error message echoes a credential, the report prints *** instead.
    def echo_password(environ):
        raise deploy.sync_pools.SyncError(f"login refused for password {environ['AIRFLOW_API_PASSWORD']}")

    monkeypatch.setattr(deploy, "validate", lambda: deploy.Validated({"a.py": b""}, {"a.py": {"a"}}))
    monkeypatch.setattr(deploy.sync_pools.AirflowApi, "from_environment", echo_password)
    environ = {"AIRFLOW_API_PASSWORD": "hunter2-very-secret", "DEPLOY_TARGET_URI": str(tmp_path / "volume")}
    assert deploy.main(["--target", "volume"], environ) == 1
    output = capsys.readouterr()
    assert "login refused for password ***" in output.err
    assert "hunter2-very-secret" not in output.out + output.err
    assert not (tmp_path / "volume").exists()
