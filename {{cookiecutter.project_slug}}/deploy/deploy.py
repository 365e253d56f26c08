#!/usr/bin/env python3
"""Deploy dags/ to the DAG bundle production reads, with no window of broken or missing DAGs.

    make deploy                  # .venv/bin/python deploy/deploy.py
    make deploy ARGS=--dry-run   # validate and show every change, change nothing

Steps, each printed as it runs; any failure stops the deploy with exit status 1:
  1. Validate: parse every DAG file with the checks the test suite uses (tests/conftest.py).
     On any error, stop before the target or Airflow is touched, and list the errors.
  2. Log in to the Airflow REST API: a JWT from /auth/token.
  3. Pools: apply config/pools.json, idempotently, before any DAG that needs a new pool arrives.
  4. Sync dags/ to the target: changed files only, orphans deleted last, never __pycache__/ or
     *.pyc. A git DAG bundle needs no sync: it checks out the pushed commit itself.
  5. Wait until the dag-processor has parsed what was deployed, polling the API with a deadline.
  6. Verify: no import errors in the bundle; otherwise list them.

Dry run: steps 1 to 4 only read; they print what they would change.

What each target guarantees:
  s3, gcs     objects are written whole; new and changed ones first, orphans deleted last, so a
              bundle refresh in between sees every file a DAG imports, old or new.
  volume      rsync --delay-updates renames every changed file into place at the end of the
              transfer, and --delete-after removes orphans after that: the dag-processor never
              reads a half-written file. dags/.airflowignore hides rsync's .~tmp~ staging folders.
  git_bundle  atomic: the bundle switches from one commit to the next.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib
import os
import re
import subprocess
import sys
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = PROJECT_ROOT / "dags"
POOLS_FILE = PROJECT_ROOT / "config" / "pools.json"
DEFAULT_TARGET = "{{ cookiecutter.deploy_target }}"
# Must equal the "name" of the bundle in [dag_processor] dag_bundle_config_list (see README).
DEFAULT_BUNDLE_NAME = "{{ cookiecutter.project_slug }}"
SECRET_VARIABLES = ("AIRFLOW_API_PASSWORD", "AIRFLOW_API_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
POLL_SECONDS = 3

# The DAG checks and the pool sync are shared with the test suite, which reaches them here too.
sys.path[:0] = [str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT / "scripts")]
dag_checks = importlib.import_module("{{ cookiecutter.project_slug }}.dag_checks")
sync_pools = importlib.import_module("sync_pools")


class DeployError(Exception):
    """Stops the deploy; the message says what to fix."""


class Reporter:
    """Step-by-step progress on stdout, errors on stderr; known secrets never reach either."""

    def __init__(self, environ: dict[str, str], steps: int) -> None:
        self.secrets = [environ[name] for name in SECRET_VARIABLES if environ.get(name)]
        self.steps = steps
        self.current = 0

    def add_secret(self, value: str) -> None:
        if value:
            self.secrets.append(value)

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def step(self, title: str) -> None:
        self.current += 1
        print(self.redact(f"[{self.current}/{self.steps}] {title}"), flush=True)

    def detail(self, text: str) -> None:
        print(self.redact("      " + text.replace("\n", "\n      ")), flush=True)

    def fail(self, text: str) -> None:
        print(self.redact(f"deploy failed: {text}"), file=sys.stderr, flush=True)


# ── What gets deployed ───────────────────────────────────────────────────────────────────────


def is_excluded(relative: PurePosixPath) -> bool:
    """Bytecode is built where the code runs; shipping it would only go stale."""
    return "__pycache__" in relative.parts or relative.suffix == ".pyc"


def local_files(folder: Path) -> dict[str, bytes]:
    """Every file to deploy, by its path relative to the folder (the bundle's root)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = PurePosixPath(path.relative_to(folder).as_posix())
        if path.is_file() and not is_excluded(relative):
            files[str(relative)] = path.read_bytes()
    return files


@dataclass(frozen=True)
class Validated:
    files: dict[str, bytes]
    dag_ids_by_file: dict[str, set[str]]


def validate(dags_folder: Path = DAGS_FOLDER, pools_file: Path = POOLS_FILE) -> Validated:
    dag_checks.use_project_config(PROJECT_ROOT)
    with warnings.catch_warnings():
        try:
            importlib.import_module("airflow")
        except ModuleNotFoundError:
            raise DeployError(f"no Airflow in {sys.executable}: run `make deploy`, which uses .venv") from None
        # After Airflow's import, which installs warning filters of its own.
        warnings.simplefilter("ignore", DeprecationWarning)
        dag_bag = dag_checks.parse_dags(dags_folder, pools_file)
    if problems := dag_checks.deploy_blockers(dag_bag):
        raise DeployError(
            f"{len(problems)} problem(s) in {dags_folder}; nothing was deployed:\n\n" + "\n\n".join(problems)
        )
    dag_ids_by_file: dict[str, set[str]] = {}
    for dag_id, dag in dag_bag.dags.items():
        relative = Path(dag.fileloc).resolve().relative_to(dags_folder.resolve()).as_posix()
        dag_ids_by_file.setdefault(relative, set()).add(dag_id)
    return Validated(local_files(dags_folder), dag_ids_by_file)


# ── Targets ──────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class SyncPlan:
    upload: list[str]
    delete: list[str]
    unchanged: int


class Target:
    """Where the DAG files go, and how to tell that the server runs what was deployed."""

    def plan(self, files: dict[str, bytes]) -> SyncPlan:
        raise NotImplementedError

    def apply(self, plan: SyncPlan, files: dict[str, bytes]) -> None:
        raise NotImplementedError

    def serves(self, api: sync_pools.AirflowApi, dag: dict, source: str) -> bool:
        """The dag-processor stores the source of each file it parses: ours, once it has parsed the new one."""
        served = api.request("GET", f"/api/v2/dagSources/{urllib.parse.quote(dag['dag_id'], safe='')}")
        return served.get("content") == source


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def plan_objects(files: dict[str, bytes], stored: dict[str, str]) -> SyncPlan:
    """stored: the MD5 hex digest of each object, by path relative to the prefix."""
    upload = sorted(path for path, data in files.items() if stored.get(path) != md5_hex(data))
    delete = sorted(set(stored) - set(files))
    return SyncPlan(upload, delete, len(files) - len(upload))


def split_bucket_uri(uri: str, scheme: str) -> tuple[str, str]:
    """("bucket", "prefix/") from scheme://bucket/prefix; the prefix is "" at the bucket's root."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != scheme or not parsed.netloc:
        raise DeployError(f"DEPLOY_TARGET_URI must look like {scheme}://bucket/prefix, not {uri!r}")
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/" if prefix else ""


@dataclass
class S3Store:
    bucket: str
    prefix: str
    client: object
    # What the SDK raises; the target reports it as a failed deploy.
    errors: tuple[type[Exception], ...] = ()

    @classmethod
    def connect(cls, uri: str) -> S3Store:
        bucket, prefix = split_bucket_uri(uri, "s3")
        import boto3
        import botocore.exceptions

        # boto3's standard chain: environment, profile, instance or pod role; AWS_ENDPOINT_URL too.
        errors = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
        return cls(bucket, prefix, boto3.client("s3"), errors)

    def list(self) -> dict[str, str]:
        stored = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(self.prefix) :]
                if relative and not relative.endswith("/"):
                    # A multipart upload's ETag is not an MD5; it never matches, so it is re-uploaded.
                    stored[relative] = item["ETag"].strip('"')
        return stored

    def put(self, relative: str, data: bytes) -> None:
        checksum = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + relative, Body=data, ContentMD5=checksum)

    def delete(self, relatives: list[str]) -> None:
        for start in range(0, len(relatives), 1000):
            batch = [{"Key": self.prefix + relative} for relative in relatives[start : start + 1000]]
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if failed := answer.get("Errors"):
                raise DeployError(f"could not delete {[error['Key'] for error in failed]}: {failed[0]['Message']}")


@dataclass
class GcsStore:
    bucket: str
    prefix: str
    client: object
    errors: tuple[type[Exception], ...] = ()

    @classmethod
    def connect(cls, uri: str) -> GcsStore:
        bucket, prefix = split_bucket_uri(uri, "gs")
        import google.api_core.exceptions
        import google.auth.exceptions
        from google.cloud import storage

        errors = (google.api_core.exceptions.GoogleAPIError, google.auth.exceptions.GoogleAuthError)
        try:
            # google-auth's standard chain: GOOGLE_APPLICATION_CREDENTIALS, gcloud, workload identity.
            return cls(bucket, prefix, storage.Client(), errors)
        except errors as error:
            raise DeployError(f"no Google Cloud credentials: {error}") from None

    def list(self) -> dict[str, str]:
        stored = {}
        for blob in self.client.list_blobs(self.bucket, prefix=self.prefix):
            relative = blob.name[len(self.prefix) :]
            if relative and not relative.endswith("/"):
                # Composite objects carry no MD5; "" never matches, so they are re-uploaded.
                stored[relative] = base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else ""
        return stored

    def put(self, relative: str, data: bytes) -> None:
        self.client.bucket(self.bucket).blob(self.prefix + relative).upload_from_string(data)

    def delete(self, relatives: list[str]) -> None:
        bucket = self.client.bucket(self.bucket)
        for relative in relatives:
            bucket.blob(self.prefix + relative).delete()


class ObjectStoreTarget(Target):
    def __init__(self, uri: str, store: S3Store | GcsStore) -> None:
        self.uri, self.store = uri, store

    def __str__(self) -> str:
        return self.uri

    def plan(self, files: dict[str, bytes]) -> SyncPlan:
        try:
            return plan_objects(files, self.store.list())
        except self.store.errors as error:
            raise DeployError(f"cannot list {self.uri}: {error}") from None

    def apply(self, plan: SyncPlan, files: dict[str, bytes]) -> None:
        try:
            # New and changed files first, orphans last: a DAG never loses a file it still imports.
            for relative in plan.upload:
                self.store.put(relative, files[relative])
            if plan.delete:
                self.store.delete(plan.delete)
        except self.store.errors as error:
            raise DeployError(f"sync to {self.uri} failed part-way: {error}; run the deploy again") from None


RSYNC_OPTIONS = (
    "--recursive",
    "--links",
    # Content decides what is copied, not timestamps: a fresh checkout would otherwise rewrite every file.
    "--checksum",
    "--delay-updates",
    "--delete-after",
    # Excluded names are also left alone at the target, where Python may keep its own bytecode.
    "--exclude=__pycache__/",
    "--exclude=*.pyc",
    "--itemize-changes",
)


def parse_itemized(output: str) -> tuple[list[str], list[str]]:
    """(files sent, paths deleted) from rsync --itemize-changes output."""
    upload, delete = [], []
    for line in output.splitlines():
        if line.startswith(("<f", ">f")):
            upload.append(line[12:])
        elif line.startswith("*deleting"):
            delete.append(line[12:])
    return sorted(upload), sorted(delete)


class VolumeTarget(Target):
    """A folder the dag-processor reads: a mounted path, or an rsync destination such as host:/path."""

    def __init__(self, destination: str, source: Path = DAGS_FOLDER) -> None:
        self.destination, self.source = destination, source

    def __str__(self) -> str:
        return self.destination

    def rsync(self, *extra: str) -> str:
        command = ["rsync", *RSYNC_OPTIONS, *extra, f"{self.source}/", self.destination]
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise DeployError("rsync is not installed (apt-get install rsync)") from None
        if result.returncode:
            raise DeployError(f"rsync to {self.destination} exited {result.returncode}: {result.stderr.strip()}")
        return result.stdout

    def plan(self, files: dict[str, bytes]) -> SyncPlan:
        upload, delete = parse_itemized(self.rsync("--dry-run"))
        return SyncPlan(upload, delete, len(files) - len(upload))

    def apply(self, plan: SyncPlan, files: dict[str, bytes]) -> None:
        self.rsync()


class GitBundleTarget(Target):
    """Nothing to sync: GitDagBundle fetches its tracking ref and checks out the pushed commit."""

    def __init__(self, repository: Path = PROJECT_ROOT) -> None:
        self.repository = repository
        self.commit = self.git("rev-parse", "HEAD")

    def __str__(self) -> str:
        return f"the git DAG bundle, at commit {self.commit[:12]}"

    def git(self, *args: str) -> str:
        try:
            result = subprocess.run(
                ["git", *args], cwd=self.repository, capture_output=True, text=True, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            raise DeployError("git is not installed") from None
        if result.returncode:
            raise DeployError(f"git {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout.strip()

    def plan(self, files: dict[str, bytes]) -> SyncPlan:
        if dirty := self.git("status", "--porcelain", "--", "dags"):
            raise DeployError(f"dags/ has uncommitted changes; the bundle only sees pushed commits:\n{dirty}")
        return SyncPlan([], [], len(files))

    def apply(self, plan: SyncPlan, files: dict[str, bytes]) -> None:
        """The push was the sync."""

    def serves(self, api: sync_pools.AirflowApi, dag: dict, source: str) -> bool:
        return dag.get("bundle_version") == self.commit


TARGETS = ("s3", "gcs", "volume", "git_bundle")
SDK_PACKAGES = {"s3": "apache-airflow-providers-amazon (boto3)", "gcs": "apache-airflow-providers-google"}


def make_target(kind: str, environ: dict[str, str]) -> Target:
    if kind == "git_bundle":
        return GitBundleTarget()
    uri = environ.get("DEPLOY_TARGET_URI", "")
    if not uri:
        raise DeployError(f"set DEPLOY_TARGET_URI for the {kind} target (see --help)")
    try:
        if kind == "s3":
            return ObjectStoreTarget(uri, S3Store.connect(uri))
        if kind == "gcs":
            return ObjectStoreTarget(uri, GcsStore.connect(uri))
    except ImportError as error:
        raise DeployError(f"the {kind} target needs {SDK_PACKAGES[kind]} in requirements.txt: {error}") from None
    if re.match(r"^[a-z][a-z0-9+.-]*://", uri) and not uri.startswith("rsync://"):
        raise DeployError(f"the volume target needs a path or an rsync destination, not {uri!r}")
    return VolumeTarget(uri)


# ── What the server has parsed ───────────────────────────────────────────────────────────────


def paged(api: sync_pools.AirflowApi, path: str, key: str) -> list[dict]:
    items: list[dict] = []
    separator = "&" if "?" in path else "?"
    while True:
        page = api.request("GET", f"{path}{separator}limit=100&offset={len(items)}")
        items += page[key]
        if not page[key] or len(items) >= page["total_entries"]:
            return items


def bundle_dags(api: sync_pools.AirflowApi, bundle: str) -> dict[str, dict]:
    quoted = urllib.parse.quote(bundle, safe="")
    return {dag["dag_id"]: dag for dag in paged(api, f"/api/v2/dags?bundle_name={quoted}", "dags")}


def bundle_import_errors(api: sync_pools.AirflowApi, bundle: str) -> dict[str, dict]:
    quoted = urllib.parse.quote(bundle, safe="")
    errors = paged(api, f"/api/v2/importErrors?bundle_name={quoted}", "import_errors")
    return {error["filename"]: error for error in errors}


def request_reparse(
    api: sync_pools.AirflowApi, known: dict[str, dict], uploaded: Iterable[str], deployed: Iterable[str]
) -> int:
    """Ask for the uploaded files to be parsed now rather than at the bundle's next refresh interval.

    Any such request also refreshes its bundle, which is how new files are found at once. Only a
    file the server knows has a token to ask with: when no uploaded file has one, any deployed one
    will do. Returns how many requests were made: none for a bundle with no DAG yet.
    """
    deployed = set(deployed)
    tokens = {
        dag["relative_fileloc"]: dag["file_token"] for dag in known.values() if dag["relative_fileloc"] in deployed
    }
    wanted = [tokens[path] for path in uploaded if path in tokens] or list(tokens.values())[:1]
    for token in wanted:
        api.request("PUT", f"/api/v2/parseDagFile/{token}")
    return len(wanted)


@dataclass
class ParseWait:
    """Polls until every deployed DAG file is parsed, as its new code or as a fresh import error."""

    api: sync_pools.AirflowApi
    target: Target
    bundle: str
    deployed: Validated
    errors_before: dict[str, str]
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    pending: dict[str, set[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.pending = {path: set(dag_ids) for path, dag_ids in self.deployed.dag_ids_by_file.items()}

    def check(self) -> list[str]:
        """One poll: drops files the server has caught up with; returns what is still outstanding."""
        errors = bundle_import_errors(self.api, self.bundle)
        dags = bundle_dags(self.api, self.bundle)
        for path, dag_ids in list(self.pending.items()):
            error = errors.get(path)
            # Airflow reads the file as text, with universal newlines.
            source = self.deployed.files[path].decode().replace("\r\n", "\n")
            if error and error["timestamp"] != self.errors_before.get(path):
                del self.pending[path]
            elif all(dag_id in dags and self.target.serves(self.api, dags[dag_id], source) for dag_id in dag_ids):
                del self.pending[path]
        # An error for a file that is no longer deployed goes when the bundle is next refreshed.
        gone = sorted(
            f"{path} (deleted, import error not cleared yet)" for path in set(errors) - set(self.deployed.files)
        )
        return sorted(self.pending) + gone

    def run(self, timeout: float) -> float:
        start = self.clock()
        while outstanding := self.check():
            if self.clock() - start > timeout:
                raise DeployError(
                    f"the dag-processor has not parsed these within {timeout:.0f} s:\n  "
                    + "\n  ".join(outstanding)
                    + f"\nIs it running, and does bundle {self.bundle!r} read {self.target}?"
                )
            self.sleep(POLL_SECONDS)
        return self.clock() - start


def format_import_errors(errors: dict[str, dict]) -> str:
    return "\n\n".join(f"{path}:\n{error['stack_trace'].rstrip()}" for path, error in sorted(errors.items()))


# ── The deploy ───────────────────────────────────────────────────────────────────────────────


def apply_pools(api: sync_pools.AirflowApi, dry_run: bool, out: Reporter) -> None:
    pools = sync_pools.load_pools(POOLS_FILE)
    changes = sync_pools.plan(pools, api.pools(), prune=False)
    for action, name, settings in changes:
        slots = f": {settings['slots']} slots" if settings else ""
        out.detail(f"{'would ' if dry_run else ''}{action} pool {name}{slots}")
    if not dry_run:
        sync_pools.apply(api, changes)
    out.detail(f"{len(pools)} declared, {len(changes)} change(s) {'planned' if dry_run else 'applied'}")


def sync(target: Target, plan: SyncPlan, deployed: Validated, dry_run: bool, out: Reporter) -> None:
    for action, paths in (("upload", plan.upload), ("delete", plan.delete)):
        for path in paths:
            out.detail(f"{'would ' if dry_run else ''}{action} {path}")
    if not dry_run:
        target.apply(plan, deployed.files)
    out.detail(f"{len(plan.upload)} to upload, {len(plan.delete)} to delete, {plan.unchanged} unchanged")


def deploy(args: argparse.Namespace, environ: dict[str, str], out: Reporter) -> None:
    target = make_target(args.target, environ)
    bundle = environ.get("DEPLOY_BUNDLE_NAME") or DEFAULT_BUNDLE_NAME

    out.step(f"Validate {DAGS_FOLDER.name}/ with the test suite's DAG checks")
    deployed = validate()
    dag_count = sum(len(dag_ids) for dag_ids in deployed.dag_ids_by_file.values())
    out.detail(
        f"OK: {dag_count} DAG(s) in {len(deployed.dag_ids_by_file)} file(s); {len(deployed.files)} file(s) to deploy"
    )

    try:
        out.step(f"Log in to the Airflow API at {environ.get('AIRFLOW_API_URL', '(unset)')}")
        api = sync_pools.AirflowApi.from_environment(environ)
        out.add_secret(api.token)
        known_dags = bundle_dags(api, bundle)
        errors_before = {path: error["timestamp"] for path, error in bundle_import_errors(api, bundle).items()}
        out.detail(f"bundle {bundle!r}: {len(known_dags)} DAGs, {len(errors_before)} import errors before the deploy")
        # Read-only, so a target that cannot be read or synced stops the deploy before the pools change.
        plan = target.plan(deployed.files)

        out.step(f"Pools from {POOLS_FILE.relative_to(PROJECT_ROOT)}")
        apply_pools(api, args.dry_run, out)
        out.step(f"Sync {DAGS_FOLDER.name}/ to {target}")
        sync(target, plan, deployed, args.dry_run, out)

        if args.dry_run:
            out.step("Wait for the dag-processor: skipped, dry run")
            out.step("Verify import errors: skipped, dry run")
            print("Dry run: nothing was changed.")
            return

        out.step(f"Wait for the dag-processor to parse the deployed files (up to {args.timeout:.0f} s)")
        try:
            nudged = request_reparse(api, known_dags, plan.upload, deployed.files)
            out.detail(
                f"asked for {nudged} file(s) to be parsed now" if nudged else "new bundle: waiting for its refresh"
            )
        except sync_pools.SyncError as error:
            out.detail(f"could not ask for a re-parse ({error}); waiting for the bundle's refresh interval")
        waited = ParseWait(api, target, bundle, deployed, errors_before).run(args.timeout)
        out.detail(f"every deployed DAG file ({len(deployed.dag_ids_by_file)}) parsed after {waited:.0f} s")

        out.step(f"Verify: import errors in bundle {bundle!r}")
        if errors := bundle_import_errors(api, bundle):
            raise DeployError(
                f"the deployed DAGs have {len(errors)} import error(s) on the server:\n\n"
                + format_import_errors(errors)
            )
        out.detail("none")
    except sync_pools.SyncError as error:
        raise DeployError(str(error)) from None
    print(f"Deployed to {target}: {len(plan.upload)} uploaded, {len(plan.delete)} deleted; every DAG parsed cleanly.")


ENVIRONMENT_HELP = f"""
environment (credentials come only from here and are never printed):
  AIRFLOW_API_URL         the api-server, e.g. https://airflow.example.com
  AIRFLOW_API_USERNAME    with AIRFLOW_API_PASSWORD, exchanged for a JWT at /auth/token;
  AIRFLOW_API_PASSWORD    or set AIRFLOW_API_TOKEN to a JWT instead
  DEPLOY_TARGET_URI       s3://bucket/prefix, gs://bucket/prefix, or a path or rsync destination
                          (host:/path) for volume; not used by git_bundle
  DEPLOY_BUNDLE_NAME      the bundle's name in [dag_processor] dag_bundle_config_list
                          (default: {DEFAULT_BUNDLE_NAME})
  Cloud credentials come from the SDK's standard chain: boto3 (AWS_PROFILE, AWS_ACCESS_KEY_ID, a
  role; AWS_ENDPOINT_URL for S3-compatible stores) or google-auth (GOOGLE_APPLICATION_CREDENTIALS,
  workload identity).
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="deploy/deploy.py",
        description=__doc__.split("\n\n")[0],
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dry-run", action="store_true", help="validate and print every change; change nothing")
    parser.add_argument(
        "--target", choices=TARGETS, default=DEFAULT_TARGET, help=f"where the DAGs go (default: {DEFAULT_TARGET})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        metavar="SECONDS",
        help="how long to wait for the dag-processor (default: 300)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    args = parse_args(argv)
    # The progress report stays readable: Airflow logs only what goes wrong.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    environ = dict(os.environ if environ is None else environ)
    out = Reporter(environ, steps=6)
    try:
        deploy(args, environ, out)
    except DeployError as error:
        out.fail(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
