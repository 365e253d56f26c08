"""Ruff's Airflow 3 rules: what it finds in the old code, and which of it ruff fixes by itself.

The rules, as ruff 0.17.6 ships them:

| rule | what | ruff | here |
|---|---|---|---|
| AIR301 | removed in Airflow 3 | stable | blocking |
| AIR302 | moved to a provider; the old path is gone | stable | blocking |
| AIR303 | call signature changed; raises at runtime | stable | blocking |
| AIR304 | a value that changes per parse (`datetime.now()`) in a Dag or task argument | preview | blocking |
| AIR311 | deprecated, still works on 3.x | stable | advisory |
| AIR312 | moved to a provider, the old path still works on 3.x | stable | advisory |
| AIR321 | moved in Airflow 3.1, the old path still works | preview | advisory |

AIR304 is blocking because each parse then stores a new Dag version: the metadata DB grows
without bound.
The two preview rules are narrow (fixed symbol lists, one call pattern) and report nothing on the
Airflow 3 code this project ships, so they are on. Ruff runs isolated from the old repository's
own settings and ignores its `noqa` comments: a migration report must see what a team silenced.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from scripts.upgrade_check.model import Finding, UsageError

BLOCKING_RULES = ("AIR301", "AIR302", "AIR303", "AIR304")
ADVISORY_RULES = ("AIR311", "AIR312", "AIR321")
RULES = BLOCKING_RULES + ADVISORY_RULES
# Ruff takes paths as arguments; stay far below any command-line length limit.
FILES_PER_RUN = 500
SYMBOL = re.compile(r"`([^`]+)`")
# Ruff names each removed class; the summary counts the whole family as one blocker, as patterns.py does.
BLOCKER_FAMILIES = {"airflow.contrib.": "airflow.contrib import", "airflow.operators.subdag.": "SubDAG"}


def ruff_executable() -> str:
    """The ruff this project pins (constraints.txt), from the environment that runs this tool."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        raise UsageError("ruff is not installed in this environment: run `make install` first")
    return ruff


def ruff_check(root: Path, files: list[str], *extra: str, rules: tuple[str, ...] = RULES):
    """Run `ruff check` over files under root; returns the completed processes, one per chunk."""
    base = [ruff_executable(), "check", "--isolated", "--no-cache", "--preview", "--ignore-noqa"]
    base += [f"--select={','.join(rules)}", "--exit-zero", *extra]
    return [
        subprocess.run([*base, *files[start : start + FILES_PER_RUN]], cwd=root, capture_output=True, text=True)
        for start in range(0, len(files), FILES_PER_RUN)
    ]


def ruff_json(root: Path, files: list[str], rules: tuple[str, ...] = RULES) -> list[dict]:
    """Ruff's JSON findings for the files, with paths made relative to root."""
    findings = []
    for result in ruff_check(root, files, "--output-format=json", rules=rules):
        if result.returncode != 0:
            raise UsageError(f"ruff failed: {result.stderr.strip() or result.stdout.strip()}")
        for item in json.loads(result.stdout or "[]"):
            item["filename"] = Path(item["filename"]).resolve().relative_to(root.resolve()).as_posix()
            findings.append(item)
    return findings


def first_symbol(message: str) -> str:
    match = SYMBOL.search(message)
    return match[1] if match else ""


def to_finding(item: dict) -> Finding | None:
    """A ruff finding in this report's terms; syntax errors are left to Python's own parser."""
    code = item.get("code")
    if code not in RULES:
        return None
    symbol = first_symbol(item["message"])
    family = next((name for prefix, name in BLOCKER_FAMILIES.items() if symbol.startswith(prefix)), None)
    return Finding(
        path=item["filename"],
        line=item["location"]["row"],
        column=item["location"]["column"],
        category="code",
        rule=code,
        message=item["message"],
        blocking=code in BLOCKING_RULES,
        blocker=family or (f"{code} `{symbol}`" if symbol else code),
        fix=(item.get("fix") or {}).get("applicability"),
    )


def lint(root: Path, files: list[str]) -> list[Finding]:
    return [finding for item in ruff_json(root, files) if (finding := to_finding(item))]


def ruff_version() -> str:
    result = subprocess.run([ruff_executable(), "--version"], capture_output=True, text=True)
    return result.stdout.strip().removeprefix("ruff ")


def symbols_by_line(findings: list[Finding]) -> dict[tuple[str, int], set[str]]:
    """Every name a ruff finding quotes, per (file, line): what the AST checks need not repeat."""
    quoted: dict[tuple[str, int], set[str]] = {}
    for finding in findings:
        quoted.setdefault((finding.path, finding.line), set()).update(SYMBOL.findall(finding.message))
    return quoted
