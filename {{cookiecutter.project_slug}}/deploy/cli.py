"""The deploy's steps in order, its progress report and its arguments (`python -m deploy --help`).

    make deploy                  # PYTHONPATH=plugins .venv/bin/python -m deploy
    make deploy ARGS=--dry-run   # validate and show every change, change nothing

Steps, each printed as it runs; any failure stops the deploy with exit status 1:
  1. Validate dags/ with plugins/<package>/dag_checks.py, the checks `make test` runs: symbolic
     links, import errors, cycles, undeclared pools, parse-time access. On any problem, stop
     before Airflow or the target is touched, and list the problems.
  2. Log in to the REST API (scripts/airflow_api.py), read the bundle's DAGs and import errors,
     and plan the sync, read-only. A plan that deletes files of a type dags/ does not hold, or
     more than targets.MAX_DELETIONS, stops here unless --allow-delete is given.
  3. Pools: apply config/pools.json, idempotently, before any DAG that needs a new pool arrives.
  4. Sync dags/ to the target: changed files only, orphans deleted last, never __pycache__/ or
     *.pyc. A git DAG bundle needs no sync: it checks out the pushed commit itself.
  5. Wait until the dag-processor has parsed what was deployed, polling the API with a deadline.
  6. Verify: no import errors in the bundle; otherwise list them.
Dry run: steps 1 to 4 only read; they print what they would change.
"""

from __future__ import annotations

import argparse
import os
import sys

from deploy import DeployError, project
from deploy.parse_wait import ParseWait, bundle_dags, bundle_import_errors, format_import_errors, request_reparse
from deploy.targets import ALLOW_DELETE_FLAG, MAX_DELETIONS, TARGETS, SyncPlan, Target, check_deletions, make_target
from deploy.validate import Validated, validate
from scripts import sync_pools
from scripts.airflow_api import AirflowClient, ApiError, PermissionDenied

SECRET_VARIABLES = ("AIRFLOW_API_PASSWORD", "AIRFLOW_API_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


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


def apply_pools(client: AirflowClient, dry_run: bool, out: Reporter) -> None:
    try:
        pools = sync_pools.load_pools(project.POOLS_FILE)
    except sync_pools.PoolsFileError as error:
        raise DeployError(str(error)) from None
    changes = sync_pools.plan(pools, sync_pools.existing_pools(client), prune=False)
    for action, name, settings in changes:
        slots = f": {settings['slots']} slots" if settings else ""
        out.detail(f"{'would ' if dry_run else ''}{action} pool {name}{slots}")
    if not dry_run:
        sync_pools.apply(client, changes)
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
    bundle = environ.get("DEPLOY_BUNDLE_NAME") or project.DEFAULT_BUNDLE_NAME

    out.step(f"Validate {project.DAGS_FOLDER.name}/ with the test suite's DAG checks")
    deployed = validate()
    dag_count = sum(len(dag_ids) for dag_ids in deployed.dag_ids_by_file.values())
    out.detail(
        f"OK: {dag_count} DAG(s) in {len(deployed.dag_ids_by_file)} file(s); {len(deployed.files)} file(s) to deploy"
    )

    try:
        out.step(f"Log in to the Airflow API at {environ.get('AIRFLOW_API_URL', '(unset)')}, and plan the sync")
        client = AirflowClient.from_environment(environ, notify=out.detail)
        out.add_secret(client.token)
        known_dags = bundle_dags(client, bundle)
        errors_before = {path: error["timestamp"] for path, error in bundle_import_errors(client, bundle).items()}
        out.detail(f"bundle {bundle!r}: {len(known_dags)} DAGs, {len(errors_before)} import errors before the deploy")
        # Read-only, so a target that cannot be read, or a risky plan, stops the deploy before the pools change.
        plan = target.plan(deployed.files)
        if not args.allow_delete:
            check_deletions(plan, deployed.files, target)

        out.step(f"Pools from {project.POOLS_FILE.relative_to(project.PROJECT_ROOT)}")
        apply_pools(client, args.dry_run, out)
        out.step(f"Sync {project.DAGS_FOLDER.name}/ to {target}")
        sync(target, plan, deployed, args.dry_run, out)

        if args.dry_run:
            out.step("Wait for the dag-processor: skipped, dry run")
            out.step("Verify import errors: skipped, dry run")
            print("Dry run: nothing was changed.")
            return

        out.step(f"Wait for the dag-processor to parse the deployed files (up to {args.timeout:.0f} s)")
        try:
            nudged = request_reparse(client, known_dags, plan.upload, deployed.files)
            out.detail(
                f"asked for {nudged} file(s) to be parsed now" if nudged else "new bundle: waiting for its refresh"
            )
        except ApiError as error:
            out.detail(f"could not ask for a re-parse ({error}); waiting for the bundle's refresh interval")
        waited = ParseWait(client, target, bundle, deployed, errors_before).run(args.timeout)
        out.detail(f"every deployed DAG file ({len(deployed.dag_ids_by_file)}) parsed after {waited:.0f} s")

        out.step(f"Verify: import errors in bundle {bundle!r}")
        if errors := bundle_import_errors(client, bundle):
            raise DeployError(
                f"the deployed DAGs have {len(errors)} import error(s) on the server:\n\n"
                + format_import_errors(errors)
            )
        out.detail("none")
    except PermissionDenied as error:
        role_help = "docs/access.md: 'Access the tools need'"
        raise DeployError(f"{error}: the deploy user's role lacks this ({role_help})") from None
    except ApiError as error:
        raise DeployError(str(error)) from None
    print(f"Deployed to {target}: {len(plan.upload)} uploaded, {len(plan.delete)} deleted; every DAG parsed cleanly.")


ENVIRONMENT_HELP = f"""
environment (credentials come only from here and are never printed):
  AIRFLOW_API_URL         the api-server, e.g. https://airflow.example.com (plain http only for
                          localhost)
  AIRFLOW_API_USERNAME    with AIRFLOW_API_PASSWORD, exchanged for a token at /auth/token;
  AIRFLOW_API_PASSWORD    or set AIRFLOW_API_TOKEN to a token issued beforehand
  DEPLOY_TARGET_URI       s3://bucket/prefix, gs://bucket/prefix (never a bucket's root), or a
                          path or rsync destination (host:/path) for volume; not used by git_bundle
  DEPLOY_BUNDLE_NAME      the bundle's name in [dag_processor] dag_bundle_config_list
                          (default: {project.DEFAULT_BUNDLE_NAME})
  Cloud credentials come from the SDK's standard chain: boto3 (AWS_PROFILE, AWS_ACCESS_KEY_ID, a
  role; AWS_ENDPOINT_URL for S3-compatible stores) or google-auth (GOOGLE_APPLICATION_CREDENTIALS,
  workload identity).
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m deploy",
        description="Ship dags/ to the DAG bundle production reads, with no window of broken or missing DAGs.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dry-run", action="store_true", help="validate and print every change; change nothing")
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default=project.DEFAULT_TARGET,
        help=f"where the DAGs go (default: {project.DEFAULT_TARGET})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        metavar="SECONDS",
        help="how long to wait for the dag-processor (default: 300)",
    )
    parser.add_argument(
        ALLOW_DELETE_FLAG,
        action="store_true",
        help=f"let the sync delete files of a type dags/ does not hold, or more than {MAX_DELETIONS}",
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
