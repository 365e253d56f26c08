"""Step 5: wait until the dag-processor has parsed what was deployed, as new code or as a fresh error."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from deploy import DeployError
from deploy.targets import Target
from deploy.validate import Validated
from scripts.airflow_api import AirflowClient

POLL_SECONDS = 3


def bundle_dags(client: AirflowClient, bundle: str) -> dict[str, dict]:
    return {dag["dag_id"]: dag for dag in client.paged("/api/v2/dags", "dags", {"bundle_name": bundle})}


def bundle_import_errors(client: AirflowClient, bundle: str) -> dict[str, dict]:
    errors = client.paged("/api/v2/importErrors", "import_errors", {"bundle_name": bundle})
    return {error["filename"]: error for error in errors}


def request_reparse(
    client: AirflowClient, known: dict[str, dict], uploaded: Iterable[str], deployed: Iterable[str]
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
        client.request("PUT", f"/api/v2/parseDagFile/{token}")
    return len(wanted)


@dataclass
class ParseWait:
    """Polls until every deployed DAG file is parsed, as its new code or as a fresh import error."""

    client: AirflowClient
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
        errors = bundle_import_errors(self.client, self.bundle)
        dags = bundle_dags(self.client, self.bundle)
        for path, dag_ids in list(self.pending.items()):
            error = errors.get(path)
            # Airflow reads the file as text, with universal newlines.
            source = self.deployed.files[path].decode().replace("\r\n", "\n")
            if error and error["timestamp"] != self.errors_before.get(path):
                del self.pending[path]
            elif all(dag_id in dags and self.target.serves(self.client, dags[dag_id], source) for dag_id in dag_ids):
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
