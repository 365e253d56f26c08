"""What every check produces: findings about files, and the parse result of a DAG file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class UsageError(Exception):
    """Bad input: the command prints the message alone and exits 2, writing nothing."""


@dataclass(frozen=True)
class Finding:
    """One thing a file needs before (or soon after) it runs on Airflow 3.

    `blocking` findings stop the file from working on Airflow 3.3; the others are deprecations
    that still work. `fix` is ruff's own fix applicability ("safe" or "unsafe"), if it has one.
    `blocker` names the kind of problem, so the summary can count files per kind.
    """

    path: str
    line: int
    category: str
    rule: str
    message: str
    blocking: bool
    blocker: str
    fix: str | None = None
    column: int = 0

    def as_dict(self) -> dict:
        return {
            "line": self.line,
            "column": self.column,
            "category": self.category,
            "rule": self.rule,
            "message": self.message,
            "blocking": self.blocking,
            "fix": self.fix,
        }


@dataclass
class ParseResult:
    """How one DAG file fared when this project's Airflow imported it."""

    ok: bool
    seconds: float | None = None
    dag_ids: list[str] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    timed_out: bool = False
    pools: list[str] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "dag_ids": self.dag_ids,
            "error": self.error,
            "timed_out": self.timed_out,
            "traceback": self.traceback,
        }


def tidy(text: str, root: str) -> str:
    """An error message without machine-specific paths: the repository's and Python's own."""
    text = text.replace(f"{root}/", "")
    return re.sub(r" \((?:/|[A-Za-z]:\\)[^()]*\)(\.?)$", r"\1", text, flags=re.MULTILINE)


def blocking_message(error: str) -> str:
    """The last line of a traceback: the exception and its message."""
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"
