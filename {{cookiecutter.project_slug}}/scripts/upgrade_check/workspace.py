"""Where `make upgrade-fix` writes: a new branch of a clean git repository, or a copy. Never in place.

On a branch, the fixes are one commit: `git switch -` returns to the untouched original, and the
branch is what a pull request reviews. A repository with uncommitted changes is refused, since a
fix mixed into unsaved work cannot be undone cleanly; fixing a copy (OUT=...) always works.
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scripts.upgrade_check import lint, sources
from scripts.upgrade_check.fixes import FixOutcome, apply_safe_fixes
from scripts.upgrade_check.model import UsageError

COMMIT_MESSAGE = "Apply ruff's safe Airflow 3 fixes (make upgrade-fix)"
IGNORED_IN_COPY = shutil.ignore_patterns(".venv", "venv", "node_modules", "__pycache__", "*.pyc")


@dataclass
class FixRun:
    where: str
    outcome: FixOutcome
    diff: str
    findings_fixed: int
    note: str = ""


def git(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True)


def repository_of(folder: Path) -> Path | None:
    if shutil.which("git") is None:
        return None
    result = git(folder, "rev-parse", "--show-toplevel")
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def safe_fix_counts(root: Path, files: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in lint.lint(root, files):
        if finding.fix == "safe":
            counts[finding.path] = counts.get(finding.path, 0) + 1
    return counts


def fix_on_branch(tree: sources.SourceTree, repository: Path, branch: str) -> FixRun:
    if dirty := git(repository, "status", "--porcelain").stdout.strip():
        raise UsageError(
            f"{repository} has uncommitted changes ({len(dirty.splitlines())} paths): commit or stash them "
            "first, or fix a copy with OUT=path/to/new/folder"
        )
    if git(repository, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}").returncode == 0:
        raise UsageError(f"branch {branch} already exists in {repository}: delete it or pass BRANCH=<new name>")
    files = list(tree.python_files)
    counts = safe_fix_counts(tree.root, files)
    switched = git(repository, "switch", "--create", branch)
    if switched.returncode != 0:
        raise UsageError(f"git switch --create {branch} failed: {switched.stderr.strip()}")
    outcome = apply_safe_fixes(tree.root, files)
    paths = [str(tree.root / name) for name in outcome.changed]
    diff = git(repository, "diff", "--", *paths).stdout if paths else ""
    note = f"on the new branch {branch} (git switch - goes back)"
    if paths:
        git(repository, "add", "--", *paths)
        committed = git(repository, "commit", "--quiet", "--message", COMMIT_MESSAGE)
        if committed.returncode != 0:
            note += f"; not committed ({committed.stderr.strip() or committed.stdout.strip()}): the fixes are staged"
    return FixRun(note, outcome, diff, sum(counts.get(name, 0) for name in outcome.changed))


def fix_copy(tree: sources.SourceTree, src: Path, output: Path) -> FixRun:
    if output.exists():
        raise UsageError(f"OUT={output} already exists: name a new folder for the fixed copy")
    if src.is_file():
        output.mkdir(parents=True)
        shutil.copy2(src, output / src.name)
    else:
        shutil.copytree(tree.root, output, ignore=IGNORED_IN_COPY, symlinks=True)
    files = list(tree.python_files)
    counts = safe_fix_counts(output, files)
    outcome = apply_safe_fixes(output, files)
    diff = "".join(
        "".join(
            difflib.unified_diff(
                (tree.root / name).read_text().splitlines(keepends=True),
                (output / name).read_text().splitlines(keepends=True),
                f"a/{name}",
                f"b/{name}",
            )
        )
        for name in outcome.changed
    )
    return FixRun(f"in the copy {output}", outcome, diff, sum(counts.get(name, 0) for name in outcome.changed))


def fix(src: Path, output: Path | None, branch: str) -> FixRun:
    tree = sources.scan(src)
    if output is not None:
        return fix_copy(tree, src.resolve(), output.resolve())
    repository = repository_of(tree.root)
    if repository is not None:
        return fix_on_branch(tree, repository, branch)
    default = tree.root.with_name(f"{tree.root.name}-airflow3-fixes")
    return fix_copy(tree, src.resolve(), default)
