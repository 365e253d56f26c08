"""deploy/targets.py and deploy/object_stores.py: sync plans, what a sync may delete, and refused targets.

Every target's logic runs against local stand-ins here (fake S3 and GCS clients, a temporary git
repository); the template's own tests sync a real folder with rsync and a real S3 API (moto).
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from types import SimpleNamespace

import pytest

from deploy import DeployError
from deploy.object_stores import GcsStore, S3Store, split_bucket_uri
from deploy.targets import (
    MAX_DELETIONS,
    GitBundleTarget,
    ObjectStoreTarget,
    SyncPlan,
    check_deletions,
    make_target,
    parse_itemized,
    plan_objects,
)


def test_object_plan_uploads_new_and_changed_files_and_deletes_orphans():
    files = {"same.py": b"same", "changed.py": b"new", "new.py": b"x"}
    stored = {"same.py": hashlib.md5(b"same").hexdigest(), "changed.py": hashlib.md5(b"old").hexdigest(), "gone.py": ""}
    assert plan_objects(files, stored) == SyncPlan(upload=["changed.py", "new.py"], delete=["gone.py"], unchanged=1)


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


@pytest.mark.parametrize(("store", "fake"), [(S3Store, FakeS3), (GcsStore, FakeGcs)])
def test_object_store_sync_converges_writing_before_deleting(store, fake):
    client = fake({"dags/same.py": b"same", "dags/old.py": b"old", "dags/gone.py": b"", "other/keep.py": b"not ours"})
    target = ObjectStoreTarget("bucket/dags", store("bucket", "dags/", client))
    files = {"same.py": b"same", "old.py": b"new", "sub/new.py": b"x"}
    plan = target.plan(files)
    assert plan == SyncPlan(upload=["old.py", "sub/new.py"], delete=["gone.py"], unchanged=1)
    target.apply(plan, files)
    assert client.calls == ["put dags/old.py", "put dags/sub/new.py", "delete dags/gone.py"]
    assert client.objects == {f"dags/{name}": data for name, data in files.items()} | {"other/keep.py": b"not ours"}
    assert target.plan(files) == SyncPlan([], [], unchanged=3)


def test_store_errors_become_a_clear_failure():
    class Refusing(FakeS3):
        def put_object(self, **kwargs):
            raise PermissionError("AccessDenied")

    target = ObjectStoreTarget("s3://b/dags", S3Store("b", "dags/", Refusing({}), (PermissionError,)))
    with pytest.raises(DeployError, match="failed part-way: AccessDenied; run the deploy again"):
        target.apply(SyncPlan(["a.py"], [], 0), {"a.py": b""})


def test_rsync_itemized_output_becomes_the_plan():
    output = "cd+++++++++ sql/\n>f+++++++++ sql/q.sql\n>fcsT...... a.py\n*deleting   old.py\ncreated directory x\n"
    assert parse_itemized(output) == (["a.py", "sql/q.sql"], ["old.py"])


@pytest.mark.parametrize(
    ("kind", "uri", "problem"),
    [
        ("volume", "", "set DEPLOY_TARGET_URI"),
        ("s3", "gs://bucket/dags", "must look like s3://bucket/prefix"),
        ("gcs", "s3://bucket/dags", "must look like gs://bucket/prefix"),
        ("s3", "s3://bucket", "DEPLOY_TARGET_URI=s3://bucket is the root of bucket 'bucket': give a prefix"),
        ("s3", "s3://bucket//", "is the root of bucket"),
        ("gcs", "gs://bucket/", "is the root of bucket 'bucket'"),
        ("s3", "s3://bucket/dags/../xcom", "'..' is not allowed"),
        ("volume", "s3://bucket/dags", "needs a path or an rsync destination"),
        ("volume", "/", "is a root or home folder"),
        ("volume", "deploy@host:", "is a root or home folder"),
    ],
)
def test_bad_target_uris_are_refused_before_any_sdk_is_loaded(kind, uri, problem):
    with pytest.raises(DeployError, match=problem.replace("(", r"\(").replace(".", r"\.")):
        make_target(kind, {"DEPLOY_TARGET_URI": uri})


def test_bucket_uris_split_into_bucket_and_prefix():
    assert split_bucket_uri("s3://b/team/dags/", "s3") == ("b", "team/dags/")
    assert split_bucket_uri("gs://b/dags", "gs") == ("b", "dags/")


DEPLOYED = {"a.py": b"", "sql/q.sql": b"", ".airflowignore": b"", "config/tenants.yaml": b""}


@pytest.mark.parametrize(
    "deleted",
    [["old.py", "sql/old.sql", "sub/.airflowignore", "old/config.yaml", "old/"], [f"d{n}.py" for n in range(50)]],
    ids=["dag-file-types", "at-the-limit"],
)
def test_deleting_dag_files_up_to_the_limit_needs_no_flag(deleted):
    check_deletions(SyncPlan([], deleted, 0), DEPLOYED, "s3://b/dags")


@pytest.mark.parametrize(
    ("deleted", "problem"),
    [
        (["old.py", "xcom/run/task/0a1b2c", "notes.txt"], "delete 2 file\\(s\\) at s3://b/dags of a type dags/ does"),
        ([f"d{n}.py" for n in range(MAX_DELETIONS + 1)], f"delete {MAX_DELETIONS + 1} files at s3://b/dags, more than"),
    ],
    ids=["other-data", "too-many"],
)
def test_risky_deletions_are_refused_naming_the_flag(deleted, problem):
    with pytest.raises(DeployError, match=problem) as refused:
        check_deletions(SyncPlan([], deleted, 0), DEPLOYED, "s3://b/dags")
    assert "--allow-delete" in str(refused.value) and "Nothing was changed" in str(refused.value)


def git(repository, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repository, check=True)


def test_git_bundle_deploys_only_committed_dags_and_waits_for_that_commit(tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "a.py").write_text("# a DAG\n")
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "--quiet", "-m", "dags")
    target = GitBundleTarget(tmp_path)
    assert target.plan({"a.py": b""}) == SyncPlan([], [], 1)
    assert target.serves(None, {"bundle_version": target.commit}, "")
    assert not target.serves(None, {"bundle_version": "0" * 40}, "")
    (tmp_path / "dags" / "a.py").write_text("# changed, not committed\n")
    with pytest.raises(DeployError, match="uncommitted changes"):
        target.plan({"a.py": b""})
