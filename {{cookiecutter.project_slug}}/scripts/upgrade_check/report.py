"""One report: a status per file, the summary line a lead pastes into a ticket, Markdown and JSON."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from scripts.upgrade_check.config import ConfigReport
from scripts.upgrade_check.model import Finding, ParseResult

CLEAN, AUTO_FIX, MANUAL = "clean", "auto-fix", "manual"
STATUS_TEXT = {
    CLEAN: "parse clean on 3.3",
    AUTO_FIX: "need only auto-fixes",
    MANUAL: "need manual work",
}
STATUS_MEANING = {
    CLEAN: "imports under Airflow 3.3 and nothing blocks it (deprecations that still work may be listed)",
    AUTO_FIX: "`make upgrade-fix` fixes every blocking finding, and the fixed file imports under Airflow 3.3",
    MANUAL: "needs a person: see its findings",
}
TOP_BLOCKERS = 5


@dataclass
class FileReport:
    path: str
    dag_file: bool
    findings: list[Finding] = field(default_factory=list)
    parse: ParseResult | None = None
    status: str = MANUAL

    def blockers(self) -> set[str]:
        """What keeps this file from working that ruff's safe fixes do not solve.

        An import error counts only when nothing else explains it: `No module named 'airflow.contrib'`
        is the symptom of the airflow.contrib import already counted.
        """
        unsolved = [finding for finding in self.findings if finding.blocking and finding.fix != "safe"]
        causes = {finding.blocker for finding in unsolved if finding.rule != "import-error"}
        return causes or {finding.blocker for finding in unsolved}


@dataclass
class Report:
    source: str
    versions: dict[str, str]
    files: list[FileReport]
    pools: dict[str, dict[str, int]]
    connections: dict[str, dict[str, int]]
    config: ConfigReport | None

    def counts(self) -> Counter:
        return Counter(file.status for file in self.files)

    def top_blockers(self) -> list[tuple[str, int]]:
        per_file = Counter(blocker for file in self.files if file.status == MANUAL for blocker in file.blockers())
        return sorted(per_file.items(), key=lambda item: (-item[1], item[0]))[:TOP_BLOCKERS]

    def summary_line(self) -> str:
        counts = self.counts()
        statuses = ", ".join(f"{counts[status]} {STATUS_TEXT[status]}" for status in STATUS_TEXT)
        line = f"{len(self.files)} files: {statuses}"
        if blockers := self.top_blockers():
            line += ". Top blockers: " + "; ".join(f"{name} ({plural(count, 'file')})" for name, count in blockers)
        todo = []
        if self.pools:
            todo.append(plural(len(self.pools), "pool"))
        if self.connections:
            todo.append(plural(len(self.connections), "connection"))
        if todo:
            line += ". To declare: " + " and ".join(todo)
        if self.config and not self.config.error:
            line += f". airflow.cfg: {plural(len(self.config.lint), 'option')} to change"
        return line + "."

    def finding_counts(self) -> dict[str, int]:
        findings = [finding for file in self.files for finding in file.findings]
        counts = Counter(finding.category for finding in findings)
        return {
            **dict(sorted(counts.items())),
            "total": len(findings),
            "ruff_fixable_safe": sum(finding.fix == "safe" for finding in findings),
            "ruff_fixable_unsafe": sum(finding.fix == "unsafe" for finding in findings),
        }

    def as_dict(self) -> dict:
        counts = self.counts()
        return {
            "source": self.source,
            "versions": self.versions,
            "summary": {
                "files": len(self.files),
                "dag_files": sum(file.dag_file for file in self.files),
                **{status: counts[status] for status in STATUS_TEXT},
                "findings": self.finding_counts(),
                "top_blockers": [{"blocker": name, "files": count} for name, count in self.top_blockers()],
                "line": self.summary_line(),
            },
            "files": {
                file.path: {
                    "status": file.status,
                    "dag_file": file.dag_file,
                    "parse": file.parse.as_dict() if file.parse else None,
                    "findings": [finding.as_dict() for finding in file.findings],
                }
                for file in self.files
            },
            "undeclared_pools": self.pools,
            "undeclared_connections": self.connections,
            "config": self.config.as_dict() if self.config else None,
        }


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def parse_text(file: FileReport) -> str:
    if not file.dag_file:
        return "not a DAG file: not imported, checked by ruff and its syntax tree"
    if file.parse is None:
        return "not imported (it is not valid Python)"
    if file.parse.ok:
        dags = ", ".join(f"`{dag_id}`" for dag_id in file.parse.dag_ids) or "no DAGs"
        return f"imports in {file.parse.seconds:.2f} s: {dags}"
    return f"does not import: {file.parse.error}"


def markdown(report: Report) -> str:
    counts = report.counts()
    lines = [f"# Airflow 3 upgrade report: `{report.source}`", ""]
    lines += [" · ".join(f"{name} {version}" for name, version in report.versions.items()), "", "## Summary", ""]
    lines += ["| files | status | meaning |", "|---|---|---|"]
    lines += [f"| {counts[status]} | {STATUS_TEXT[status]} | {STATUS_MEANING[status]} |" for status in STATUS_TEXT]
    found = report.finding_counts()
    lines += [
        "",
        f"{plural(found['total'], 'finding')}: ruff fixes {found['ruff_fixable_safe']} safely (`make upgrade-fix` "
        f"applies those, except in files where ruff's fixes fail) and {found['ruff_fixable_unsafe']} only unsafely "
        "(left to you).",
    ]
    if blockers := report.top_blockers():
        lines += ["", "| top blockers | files |", "|---|---|"]
        lines += [f"| {cell(name)} | {count} |" for name, count in blockers]
    lines += ["", "For the ticket:", "", "```text", report.summary_line(), "```", "", "## Files", ""]
    for file in sorted(report.files, key=lambda file: (list(STATUS_TEXT).index(file.status), file.path)):
        if file.status == CLEAN and not file.findings:
            continue
        lines += [f"### `{file.path}`: {STATUS_TEXT[file.status]}", "", parse_text(file), ""]
        if file.findings:
            lines += ["| line | rule | finding | ruff fix |", "|---|---|---|---|"]
            for finding in file.findings:
                rule = finding.rule if finding.blocking else f"{finding.rule} (still works)"
                lines.append(f"| {finding.line or ''} | {rule} | {cell(finding.message)} | {finding.fix or ''} |")
            lines.append("")
    clean = sorted(file.path for file in report.files if file.status == CLEAN and not file.findings)
    if clean:
        lines += [f"Nothing to do in: {', '.join(f'`{path}`' for path in clean)}.", ""]
    lines += references_markdown("Pools", report.pools, "config/pools.json")
    lines += references_markdown("Connections", report.connections, "your secrets backend (and .env for local runs)")
    lines += config_markdown(report.config)
    return "\n".join(lines).rstrip() + "\n"


def references_markdown(kind: str, undeclared: dict[str, dict[str, int]], where: str) -> list[str]:
    lines = [f"## {kind} to declare", ""]
    if not undeclared:
        return [*lines, f"Every {kind.lower()[:-1]} the code names is declared.", ""]
    lines += [f"Named by the code, not declared in this project: add them to {where}.", ""]
    lines += [f"| {kind.lower()[:-1]} | used in |", "|---|---|"]
    for name, files in undeclared.items():
        used = ", ".join(f"`{path}:{line}`" if line else f"`{path}` (at parse time)" for path, line in files.items())
        lines.append(f"| `{name}` | {used} |")
    return [*lines, ""]


def config_markdown(config: ConfigReport | None) -> list[str]:
    lines = ["## airflow.cfg", ""]
    if config is None:
        return [*lines, "No airflow.cfg found in SRC or SRC/config; pass CFG=path/to/airflow.cfg to check one.", ""]
    if config.error:
        return [*lines, f"`{config.path}` could not be checked: {config.error}", ""]
    lines += [f"`airflow config lint` on `{config.path}` (a copy; your file is not changed):", ""]
    lines += [f"- {issue}" for issue in config.lint] or ["- no issues"]
    lines += ["", "`airflow config update --all-recommendations` would make these changes (not applied):", ""]
    lines += [f"- {change}" for change in config.changes] or ["- none"]
    if config.diff:
        lines += ["", "It rewrites the whole file (your comments go); the proposed file, as a diff:", "", "```diff"]
        lines += [config.diff.rstrip("\n"), "```"]
    return [*lines, ""]


def write(report: Report, folder: Path) -> tuple[Path, Path]:
    """report.md and report.json in folder, which git then ignores."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".gitignore").write_text("# Written by make upgrade-check.\n*\n")
    paths = folder / "report.md", folder / "report.json"
    paths[0].write_text(markdown(report))
    paths[1].write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return paths
