"""`make deploy` (python -m deploy) against a real api-server and dag-processor on Postgres, and real targets.

One Airflow serves every case: its dag-processor reads two bundles, a local folder that the
deploy fills with rsync ("volume") and a prefix of an S3 bucket on moto's S3-compatible server
("s3", through the amazon provider's S3DagBundle). Each target gets the three cases: a DAG that
fails to parse stops the deploy and leaves the target byte-for-byte unchanged; a good deploy
syncs exactly dags/, applies the pools and verifies; a DAG that parses locally but not on the
server (it needs plugin code the server's image does not have yet) fails the deploy. A symbolic
link in dags/ stops the deploy before anything is read through it; deleting files of a type
dags/ does not hold, or more than the limit, waits for --allow-delete; a bucket's root is
refused. A dry run changes neither the target nor the pools. No deploy ever prints a credential.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from airflow_stack import AirflowStack
from helpers import TOOLS_BIN, BakedProject, airflow_env, project_venv, run
from services import free_port, postgres_server, stop_process_group, wait_for_url

pytestmark = pytest.mark.airflow

# deploy_target s3, and the amazon provider (for its secrets backend) that S3DagBundle needs.
VARIANT = "email-alerts"
BUCKET, PREFIX = "airflow-dags", "production/dags"
# Never printed: the deploy reads it from the environment only.
AWS_SECRET = "moto-secret-never-printed"
PROBE_POOL = {"slots": 3, "description": "added by the deploy test"}

PROBE_DAG = """
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
         default_args={{"owner": "tests", "retries": 1}}, tags=["test"]):
    EmptyOperator(task_id="noop", pool="deploy_probe_pool")
"""


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """moto in server mode on a loopback port: a real HTTP S3 endpoint."""
    port = free_port()
    server = subprocess.Popen(
        [str(TOOLS_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_url(f"{url}/moto-api/", server, timeout=60, exited=lambda: "moto_server exited", interval=0.3)
        yield url
    finally:
        stop_process_group(server)


def s3_client(aws_env: dict[str, str]):
    return boto3.client(
        "s3",
        endpoint_url=aws_env["AWS_ENDPOINT_URL"],
        region_name=aws_env["AWS_DEFAULT_REGION"],
        aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
    )


@dataclass
class Target:
    kind: str
    project: BakedProject  # the copy deploys run from; tests add files to it and take them away
    uri: str
    bundle: str
    stack: AirflowStack
    aws_env: dict[str, str]

    @property
    def s3(self):
        return s3_client(self.aws_env)

    def snapshot(self) -> dict[str, bytes | None]:
        """Every file's bytes, and every folder (None), at the target."""
        if self.kind == "s3":
            keys = [item["Key"] for item in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
            return {key: self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}
        root = Path(self.uri)
        return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in root.rglob("*")}

    def expected(self) -> dict[str, bytes | None]:
        """The snapshot after a deploy: dags/ without bytecode."""
        dags = self.project.path / "dags"
        files = {
            str(p.relative_to(dags)): p.read_bytes()
            for p in dags.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        }
        if self.kind == "s3":
            return {f"{PREFIX}/{name}": data for name, data in files.items()}
        folders = {str(parent) for name in files for parent in Path(name).parents if str(parent) != "."}
        return files | dict.fromkeys(folders)

    def seed(self, files: dict[str, bytes]) -> None:
        """Put files at the target as an earlier deploy, or someone by hand, might have."""
        for name, data in files.items():
            if self.kind == "s3":
                self.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{name}", Body=data)
            else:
                path = Path(self.uri) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)

    def clear(self) -> None:
        """Empty the target, as before a first deploy."""
        if self.kind == "s3":
            for key in self.snapshot():
                self.s3.delete_object(Bucket=BUCKET, Key=key)
        else:
            shutil.rmtree(self.uri)
            Path(self.uri).mkdir()

    def deploy(self, *args: str, uri: str | None = None) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            **self.aws_env,
            "AIRFLOW_API_URL": self.stack.url,
            "AIRFLOW_API_USERNAME": "admin",
            "AIRFLOW_API_PASSWORD": self.stack.password,
            "DEPLOY_TARGET_URI": uri or self.uri,
            "DEPLOY_BUNDLE_NAME": self.bundle,
            # As the Makefile's deploy target runs it.
            "PYTHONPATH": "plugins",
        }
        python = str(self.stack.venv / "bin" / "python")
        command = [python, "-m", "deploy", "--target", self.kind, "--timeout", "150", *args]
        result = run(command, self.project.path, env, check=False)
        output = result.stdout + result.stderr
        assert self.stack.password not in output and AWS_SECRET not in output
        return result

    def server_dags(self) -> dict[str, dict]:
        dags = self.stack.request("GET", f"/api/v2/dags?bundle_name={self.bundle}&limit=100")["dags"]
        return {dag["dag_id"]: dag for dag in dags}


@pytest.fixture(scope="module")
def deployment(baked, tmp_path_factory):
    """One Airflow (api-server and dag-processor on Postgres) reading a folder bundle and an S3 bundle."""
    project = baked(VARIANT)
    venv = project_venv(project)
    home = tmp_path_factory.mktemp("deploy-airflow")
    volume = home / "volume"
    volume.mkdir()
    with postgres_server(("airflow",)) as urls, moto_s3() as s3_url:
        aws_env = {
            "AWS_ENDPOINT_URL": s3_url,
            "AWS_ACCESS_KEY_ID": "moto",
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        s3_client(aws_env).create_bucket(Bucket=BUCKET)
        bundles = [
            {
                "name": "volume-dags",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(volume)},
            },
            {
                "name": "s3-dags",
                "classpath": "airflow.providers.amazon.aws.bundles.s3.S3DagBundle",
                "kwargs": {"bucket_name": BUCKET, "prefix": PREFIX},
            },
        ]
        port = free_port()
        env = airflow_env(project.path, venv, home) | aws_env
        env |= {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"].replace("postgresql://", "postgresql+psycopg://"),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "bundles"),
            # No bytecode appears at the folder target, so its snapshots compare byte for byte.
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        stack = AirflowStack(project, venv, home, env, port=port)
        stack.airflow("db", "migrate")
        try:
            stack.start("api-server", "api-server", "--port", str(port))
            stack.start("dag-processor", "dag-processor")
            stack.wait_until_serving()
            stack.password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
            copies = tmp_path_factory.mktemp("deploy-copies")
            uris = {"volume": str(volume), "s3": f"s3://{BUCKET}/{PREFIX}"}
            targets = {
                kind: Target(kind, project.copy_to(copies / kind), uri, f"{kind}-dags", stack, aws_env)
                for kind, uri in uris.items()
            }
            for target in targets.values():
                pools_file = target.project.path / "config" / "pools.json"
                # The probe DAGs' pool, and one only this target's deploy creates.
                new_pools = {"deploy_probe_pool": PROBE_POOL, f"{target.kind}_probe_pool": PROBE_POOL}
                pools_file.write_text(json.dumps(json.loads(pools_file.read_text()) | new_pools, indent=2))
            # The folder bundle gets the project's own DAGs; the S3 one probe DAGs of its own, so
            # that no dag_id is in both bundles.
            s3_dags = targets["s3"].project.path / "dags"
            for path in s3_dags.glob("*.py"):
                path.unlink()
            shutil.rmtree(s3_dags / "config", ignore_errors=True)
            (s3_dags / "s3_probe.py").write_text(PROBE_DAG.format(dag_id="s3_probe").lstrip())
            (s3_dags / "sql").mkdir()
            (s3_dags / "sql" / "probe.sql").write_text("select 1;\n")
            yield targets
        finally:
            stack.stop_all()


@pytest.fixture(params=["volume", "s3"])
def target(request, deployment) -> Target:
    return deployment[request.param]


@contextlib.contextmanager
def extra_files(root: Path, files: dict[str, str]) -> Iterator[None]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    try:
        yield
    finally:
        for name in files:
            (root / name).unlink()


def test_a_dag_that_fails_to_parse_stops_the_deploy_and_leaves_the_target_untouched(target):
    target.seed({"left_by_an_earlier_deploy.py": b"# not a DAG\n", "notes/owner.md": b"data-platform\n"})
    before = target.snapshot()
    broken = {"broken_probe.py": "import this_module_does_not_exist\nfrom airflow.sdk import DAG\n"}
    with extra_files(target.project.path / "dags", broken):
        result = target.deploy()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "broken_probe.py" in result.stderr and "this_module_does_not_exist" in result.stderr
    assert "nothing was deployed" in result.stderr
    # Stopped at the first step: neither Airflow nor the target was contacted.
    assert "[2/6]" not in result.stdout
    assert target.snapshot() == before


def test_a_good_deploy_syncs_applies_pools_and_verifies(target):
    target.clear()
    target.seed({"orphan.py": b"# deleted by the deploy\n", "old/orphan.md": b"# also deleted\n"})
    bytecode = target.project.path / "dags" / "__pycache__" / "stale.cpython-312.pyc"
    bytecode.parent.mkdir(exist_ok=True)
    bytecode.write_bytes(b"\x00bytecode never ships")
    try:
        result = target.deploy()
    finally:
        bytecode.unlink()
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(f"[{step}/6]" in result.stdout for step in range(1, 7))
    assert "delete orphan.py" in result.stdout and f"create pool {target.kind}_probe_pool" in result.stdout
    # Exactly dags/ is at the target now: orphans gone, bytecode never uploaded.
    assert target.snapshot() == target.expected()

    pools = {pool["name"]: pool for pool in target.stack.request("GET", "/api/v2/pools")["pools"]}
    declared = json.loads((target.project.path / "config" / "pools.json").read_text())
    assert {name: pools[name]["slots"] for name in declared} == {name: pool["slots"] for name, pool in declared.items()}
    # The server parsed what was deployed, and knows no other DAG in the bundle.
    dags = target.project.path / "dags"
    served = target.server_dags()
    assert {dag["relative_fileloc"] for dag in served.values()} == {str(f.relative_to(dags)) for f in dags.glob("*.py")}
    for dag_id, dag in served.items():
        source = target.stack.request("GET", f"/api/v2/dagSources/{dag_id}")["content"]
        assert source == (dags / dag["relative_fileloc"]).read_text(), dag_id


def test_a_dry_run_reads_everything_and_changes_nothing(deployment):
    # The dry run skips the same writes for every target; S3 shows it.
    target = deployment["s3"]
    pools_before, files_before = target.stack.request("GET", "/api/v2/pools"), target.snapshot()
    probe = target.project.path / "dags" / "s3_probe.py"
    original = probe.read_text()
    try:
        probe.write_text(original + "\n# a change the dry run only reports\n")
        result = target.deploy("--dry-run")
    finally:
        probe.write_text(original)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "would upload s3_probe.py" in result.stdout and "Dry run: nothing was changed." in result.stdout
    assert target.stack.request("GET", "/api/v2/pools") == pools_before
    assert target.snapshot() == files_before


def test_a_dag_that_fails_only_on_the_server_fails_the_deploy(target):
    # The server's image has not got the new plugin module yet; the local checkout has.
    slug = target.project.slug
    helper = {f"{slug}/deploy_probe_helper.py": "SCHEDULE = None\n"}
    dag_file = f"needs_new_plugin_{target.kind}.py"
    dag = PROBE_DAG.replace("schedule=None", "schedule=SCHEDULE").format(dag_id=f"needs_new_plugin_{target.kind}")
    dag = f"from {slug}.deploy_probe_helper import SCHEDULE\n{dag}"
    with (
        extra_files(target.project.path / "plugins", helper),
        extra_files(target.project.path / "dags", {dag_file: dag}),
    ):
        result = target.deploy()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[1/6]" in result.stdout and "OK:" in result.stdout  # it passed the local checks
    if f"bundle {target.bundle!r}: 0 DAGs" not in result.stdout:
        # A bundle the server knows is refreshed on request, not at its next refresh interval.
        assert "asked for 1 file(s) to be parsed now" in result.stdout
    assert "import error(s) on the server" in result.stderr
    assert dag_file in result.stderr and "deploy_probe_helper" in result.stderr
    errors = target.stack.request("GET", f"/api/v2/importErrors?bundle_name={target.bundle}")["import_errors"]
    assert [error["filename"] for error in errors] == [dag_file]


def test_a_symbolic_link_in_dags_stops_the_deploy_before_anything_is_read_through_it(target):
    before = target.snapshot()
    # What the review found: the CI job's environment, secrets included, shipped into the bundle.
    link = target.project.path / "dags" / "env.txt"
    link.symlink_to("/proc/self/environ")
    try:
        result = target.deploy()
    finally:
        link.unlink()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "env.txt -> /proc/self/environ" in result.stderr and "never follows or ships" in result.stderr
    assert "[2/6]" not in result.stdout
    assert target.snapshot() == before


def test_deleting_other_data_or_too_many_files_waits_for_allow_delete(target):
    target.clear()
    assert target.deploy().returncode == 0
    pools_before = target.stack.request("GET", "/api/v2/pools")
    target.seed({f"stale_{index}.py": b"# an old DAG file\n" for index in range(51)})
    too_many = target.deploy()
    assert too_many.returncode == 1, too_many.stdout + too_many.stderr
    assert "would delete 51 files" in too_many.stderr and "more than 50" in too_many.stderr
    foreign = {"notes/owner.txt": b"data-platform\n", "xcom/run_1/task/8c3e2a51": b"{}"}
    target.seed(foreign)
    before = target.snapshot()
    refused = target.deploy()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "notes/owner.txt" in refused.stderr and "xcom/run_1/task/8c3e2a51" in refused.stderr
    for result in (too_many, refused):
        assert "--allow-delete" in result.stderr and "[3/6]" not in result.stdout
    assert target.snapshot() == before
    assert target.stack.request("GET", "/api/v2/pools") == pools_before

    allowed = target.deploy("--allow-delete")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert target.snapshot() == target.expected()


@pytest.mark.parametrize("root", [f"s3://{BUCKET}", f"s3://{BUCKET}/"])
def test_a_bucket_root_is_refused_and_nothing_changes(deployment, root):
    target = deployment["s3"]
    # What the review found: the XCom store in the same bucket, planned for deletion.
    target.s3.put_object(Bucket=BUCKET, Key="xcom/kept.json", Body=b"{}")
    try:
        before = target.snapshot()
        result = target.deploy(uri=root)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"DEPLOY_TARGET_URI={root} is the root of bucket {BUCKET!r}: give a prefix" in result.stderr
        assert "[1/6]" not in result.stdout
        assert target.snapshot() == before
    finally:
        target.s3.delete_object(Bucket=BUCKET, Key="xcom/kept.json")
