"""The command line: `python -m scripts.upgrade_check check --src ...` and `... fix --src ...` (see the Makefile)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.upgrade_check import check, parsing, report, workspace
from scripts.upgrade_check.model import UsageError

DEFAULT_BRANCH = "airflow3-safe-fixes"


def path_or_none(value: str) -> Path | None:
    return Path(value) if value else None


def source(value: str, command: str) -> Path:
    if not value:
        raise UsageError(f"SRC is not set: make {command} SRC=path/to/your/airflow2/repo")
    return Path(value)


def run_check(args: argparse.Namespace) -> int:
    options = check.Options(
        src=source(args.src, "upgrade-check"),
        project=args.project.resolve(),
        timeout=args.timeout,
        jobs=args.jobs,
        airflow_cfg=path_or_none(args.airflow_cfg),
    )
    result = check.run(options, announce=lambda text: print(text, flush=True))
    markdown_path, json_path = report.write(result, args.output)
    counts = result.counts()
    for status, text in report.STATUS_TEXT.items():
        print(f"  {counts[status]:>5} {text}")
    print(f"Report: {markdown_path} and {json_path}\n\n{result.summary_line()}")
    return 0


def run_fix(args: argparse.Namespace) -> int:
    run = workspace.fix(source(args.src, "upgrade-fix"), path_or_none(args.output), args.branch or DEFAULT_BRANCH)
    if run.diff:
        print(run.diff)
    outcome = run.outcome
    print(f"Applied {run.findings_fixed} safe fixes to {len(outcome.changed)} files {run.where}.")
    for name in outcome.not_converged:
        print(f"  left unchanged: {name}: ruff's fixes do not converge (Failed to converge after 100 iterations)")
    for name in outcome.invalid:
        print(f"  left unchanged: {name}: ruff's fixes would make it invalid Python")
    print("What is left: make upgrade-check SRC=<the fixed repository>")
    return 0


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="python -m scripts.upgrade_check", description=__doc__)
    commands = main_parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser("check", help="write the upgrade report for an Airflow 2 repository")
    check_parser.add_argument("--src", default="", help="the old repository, its dags/ folder or one DAG file")
    check_parser.add_argument("--airflow-cfg", default="", help="the old airflow.cfg (default: found in SRC)")
    check_parser.add_argument("--output", type=Path, default=Path("upgrade-report"), help="folder for the report")
    check_parser.add_argument("--project", type=Path, default=Path.cwd(), help="this project (pools, connections)")
    check_parser.add_argument("--timeout", type=float, default=30.0, help="seconds each DAG file may take to import")
    check_parser.add_argument("--jobs", type=int, default=parsing.default_jobs(), help="parallel imports")
    fix_parser = commands.add_parser("fix", help="apply ruff's safe Airflow 3 fixes on a new branch or a copy")
    fix_parser.add_argument("--src", default="", help="the old repository, its dags/ folder or one DAG file")
    fix_parser.add_argument("--output", default="", help="fix a copy in this new folder instead of a git branch")
    fix_parser.add_argument("--branch", default="", help=f"the new branch (default {DEFAULT_BRANCH})")
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "check":
            if args.timeout <= 0 or args.jobs < 1:
                raise UsageError("--timeout must be above 0 and --jobs at least 1")
            return run_check(args)
        return run_fix(args)
    except UsageError as error:
        print(f"upgrade-{args.command}: {error}", file=sys.stderr)
        return 2
