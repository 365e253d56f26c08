"""Where dags/ goes (s3, gcs, volume, git_bundle), how a sync is planned, and what it may delete.

What each target guarantees:
  s3, gcs     objects are written whole; new and changed ones first, orphans deleted last, so a
              bundle refresh in between sees every file a DAG imports, old or new.
  volume      rsync --delay-updates renames every changed file into place at the end of the
              transfer, and --delete-after removes orphans after that: the dag-processor never
              reads a half-written file. dags/.airflowignore hides rsync's .~tmp~ staging folders.
  git_bundle  atomic: the bundle switches from one commit to the next.
Every target deletes at most what its plan listed, and the plan is checked first (check_deletions).
"""

from __future__ import annotations

import re
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deploy import DeployError, project
from deploy.object_stores import GcsStore, S3Store, md5_hex
from scripts.airflow_api import AirflowClient, ApiError

TARGETS = ("s3", "gcs", "volume", "git_bundle")
SDK_PACKAGES = {"s3": "apache-airflow-providers-amazon (boto3)", "gcs": "apache-airflow-providers-google"}
# More deletions than this in one deploy look like a wrong DEPLOY_TARGET_URI, not a tidy-up.
MAX_DELETIONS = 50
ALLOW_DELETE_FLAG = "--allow-delete"


@dataclass(frozen=True)
class SyncPlan:
    upload: list[str]
    delete: list[str]  # a path ending in "/" is a folder
    unchanged: int


def check_deletions(plan: SyncPlan, files: dict[str, bytes], target: object) -> None:
    """Refuse a plan that deletes files of a type dags/ does not hold, or more than MAX_DELETIONS.

    A DAG file is a .py file, or a file with a suffix (or, without one, a name) that some file
    in dags/ has: .sql, .yaml, .airflowignore, ... Anything else at the target is someone else's.
    """
    doomed = [path for path in plan.delete if not path.endswith("/")]
    shipped = [PurePosixPath(path) for path in files]
    suffixes = {path.suffix for path in shipped if path.suffix} | {".py"}
    names = {path.name for path in shipped if not path.suffix}

    def is_dag_file(path: PurePosixPath) -> bool:
        return path.suffix in suffixes if path.suffix else path.name in names

    foreign = [path for path in doomed if not is_dag_file(PurePosixPath(path))]
    advice = f"check DEPLOY_TARGET_URI, or run again with {ALLOW_DELETE_FLAG} to delete them"
    if foreign:
        listed = "\n  ".join(foreign[:20]) + (f"\n  ... and {len(foreign) - 20} more" if len(foreign) > 20 else "")
        raise DeployError(
            f"the sync would delete {len(foreign)} file(s) at {target} of a type dags/ does not hold; they may be "
            f"another system's data:\n  {listed}\nNothing was changed: {advice}."
        )
    if len(doomed) > MAX_DELETIONS:
        raise DeployError(
            f"the sync would delete {len(doomed)} files at {target}, more than {MAX_DELETIONS} in one deploy. "
            f"Nothing was changed: {advice}."
        )


class Target:
    """Where the DAG files go, and how to tell that the server runs what was deployed."""

    def plan(self, files: dict[str, bytes]) -> SyncPlan:
        raise NotImplementedError

    def apply(self, plan: SyncPlan, files: dict[str, bytes]) -> None:
        raise NotImplementedError

    def serves(self, client: AirflowClient, dag: dict, source: str) -> bool:
        """The dag-processor stores the source of each file it parses: ours, once it has parsed the new one."""
        try:
            served = client.request("GET", f"/api/v2/dagSources/{urllib.parse.quote(dag['dag_id'], safe='')}")
        except ApiError as error:
            # A new DAG can be listed a moment before its source is stored: not served yet.
            if error.status == 404:
                return False
            raise
        return served.get("content") == source


def plan_objects(files: dict[str, bytes], stored: dict[str, str]) -> SyncPlan:
    """stored: the MD5 hex digest of each object, by path relative to the prefix."""
    upload = sorted(path for path, data in files.items() if stored.get(path) != md5_hex(data))
    delete = sorted(set(stored) - set(files))
    return SyncPlan(upload, delete, len(files) - len(upload))


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
    # Links are refused before the sync (deploy.validate); should one appear meanwhile, it is skipped.
    "--no-links",
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

    def __init__(self, destination: str, source: Path = project.DAGS_FOLDER) -> None:
        if destination.rstrip("/").rpartition(":")[2] in ("", "~"):
            raise DeployError(f"DEPLOY_TARGET_URI={destination} is a root or home folder: name the DAG folder itself")
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
        # Whatever arrived at the target since the plan, rsync deletes no more than the plan showed.
        self.rsync(f"--max-delete={len(plan.delete)}")


class GitBundleTarget(Target):
    """Nothing to sync: GitDagBundle fetches its tracking ref and checks out the pushed commit."""

    def __init__(self, repository: Path = project.PROJECT_ROOT) -> None:
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

    def serves(self, client: AirflowClient, dag: dict, source: str) -> bool:
        return dag.get("bundle_version") == self.commit


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
