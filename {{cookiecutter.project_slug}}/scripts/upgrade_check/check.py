"""`make upgrade-check`: every check over one old repository, gathered into one report.

`airflow config lint` and `update` run in the background while ruff, the syntax-tree checks and
the DAG imports run. A file "needs only auto-fixes" only when that is shown: ruff's safe fixes
are applied to a scratch copy, and the fixed file must then have no blocking finding left and
import under this project's Airflow.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

from scripts.upgrade_check import lint, parsing, patterns, references, sources
from scripts.upgrade_check.config import ConfigCheck
from scripts.upgrade_check.fixes import FixOutcome, apply_safe_fixes
from scripts.upgrade_check.model import Finding, ParseResult, UsageError, tidy
from scripts.upgrade_check.report import AUTO_FIX, CLEAN, MANUAL, FileReport, Report

IGNORED_IN_COPY = shutil.ignore_patterns(".git", ".venv", "venv", "node_modules", "__pycache__", "*.pyc")


@dataclass(frozen=True)
class Options:
    src: Path
    project: Path
    timeout: float = 30.0
    jobs: int = parsing.default_jobs()
    airflow_cfg: Path | None = None


def syntax_tree(path: str, source: Path) -> tuple[ast.Module | None, Finding | None]:
    """The file's syntax tree, or the finding that says why Python refuses it."""
    try:
        text = source.read_bytes()
        tree = ast.parse(text, filename=path)
        compile(tree, path, "exec", dont_inherit=True)  # some errors (repeated keywords) show only here
    except SyntaxError as error:
        message = f"{error.msg} (line {error.lineno})" if error.lineno else error.msg
        return None, Finding(path, error.lineno or 0, "syntax", "syntax-error", message, True, "syntax error")
    except ValueError as error:  # null bytes, on Python 3.11 (later versions raise SyntaxError)
        return None, Finding(path, 0, "syntax", "syntax-error", str(error), True, "syntax error")
    return tree, None


def airflow_modules(tree: ast.Module) -> set[str]:
    """The airflow.* modules a file imports, loaded once in the fork server instead of in every file."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("airflow.")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow.") and not node.level:
            found.add(node.module)
    return found


def parse_finding(path: str, result: ParseResult) -> Finding:
    line = 0
    for match in re.finditer(r'File "([^"]+)", line (\d+)', result.traceback or ""):
        if match[1] == path or match[1].endswith(f"/{path}"):
            line = int(match[2])
    rule, blocker = ("parse-timeout", "parse timeout") if result.timed_out else ("import-error", result.error or "")
    return Finding(path, line, "import", rule, result.error or "does not import", True, blocker)


def is_fix_candidate(findings: list[Finding]) -> bool:
    """Every blocking finding but import errors is one that ruff fixes safely, and there is one."""
    blocking = [finding for finding in findings if finding.blocking and finding.category != "import"]
    return bool(blocking) and all(finding.category == "code" and finding.fix == "safe" for finding in blocking)


def why_not_auto_fixed(name: str, outcome: FixOutcome, relinted: list[Finding], parsed: ParseResult | None):
    """None when the fixed copy is good; else the finding that says what went wrong."""
    if name not in outcome.changed + outcome.not_converged + outcome.invalid:
        text = "ruff's safe fixes changed nothing here"
        return Finding(name, 0, "fix", "fix-no-change", text, True, "ruff's fix changes nothing")
    if name in outcome.not_converged:
        text = "ruff's safe fixes do not converge here (Failed to converge after 100 iterations): upgrade-fix leaves it"
        return Finding(name, 0, "fix", "fix-not-converged", text, True, "ruff's fix does not converge")
    if name in outcome.invalid:
        text = "ruff's safe fixes make this file invalid Python: upgrade-fix leaves it unchanged"
        return Finding(name, 0, "fix", "fix-invalid", text, True, "ruff's fix makes invalid Python")
    if any(finding.blocking for finding in relinted):
        text = "blocking findings remain after ruff's safe fixes"
        return Finding(name, 0, "fix", "fix-incomplete", text, True, "blocking findings left after the fix")
    if parsed is not None and not parsed.ok:
        text = f"still does not import after ruff's safe fixes: {parsed.error}"
        return Finding(name, 0, "fix", "fix-does-not-import", text, True, parsed.error or "import error")
    return None


def shown(path: Path) -> str:
    """The path as the user would type it: relative to the current folder when inside it."""
    here = Path.cwd().resolve()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


def versions() -> dict[str, str]:
    return {"Airflow": metadata.version("apache-airflow"), "ruff": lint.ruff_version()}


@dataclass
class Gathered:
    """What the checks found so far: per file, and the pools and connections named anywhere."""

    files: dict[str, FileReport]
    pools: dict[str, dict[str, int]] = field(default_factory=dict)
    connections: dict[str, dict[str, int]] = field(default_factory=dict)
    dag_files: list[str] = field(default_factory=list)  # the ones Python can compile
    airflow_imports: set[str] = field(default_factory=set)

    def add(self, finding: Finding) -> None:
        self.files[finding.path].findings.append(finding)

    def uses(self, kind: dict[str, dict[str, int]], names: dict[str, int] | list[str], path: str) -> None:
        for name in names:
            kind.setdefault(name, {}).setdefault(path, names[name] if isinstance(names, dict) else 0)


def run(options: Options, announce: Callable[[str], object] = print) -> Report:
    tree = sources.scan(options.src, options.airflow_cfg)
    if find_spec("airflow") is None:
        raise UsageError(f"Airflow is not installed for {sys.executable}: run `make install` first")
    announce(
        f"Checking {len(tree.python_files)} Python files ({len(tree.dag_files)} DAG files) in {options.src}: "
        f"{options.jobs} imports at a time, {options.timeout:g} s each"
    )
    config_check = ConfigCheck(tree.airflow_cfg, shown(tree.airflow_cfg)) if tree.airflow_cfg else None
    scratch = Path(tempfile.mkdtemp(prefix="upgrade-check-"))
    try:
        gathered = static_checks(tree)
        candidates = [name for name, file in gathered.files.items() if is_fix_candidate(file.findings)]
        fixed_root = scratch / "fixed"
        if candidates:
            shutil.copytree(tree.root, fixed_root, ignore=IGNORED_IN_COPY, symlinks=True)
        outcome = apply_safe_fixes(fixed_root, candidates) if candidates else FixOutcome()
        relinted: dict[str, list[Finding]] = {name: [] for name in outcome.changed}
        for finding in lint.lint(fixed_root, outcome.changed) if outcome.changed else []:
            relinted[finding.path].append(finding)
        parsed = import_dag_files(tree, options, scratch, gathered, outcome.changed)
        record_imports(gathered, parsed)
        for name, file in gathered.files.items():
            classify(file, name in candidates, outcome, relinted.get(name, []), parsed.get(f"fixed:{name}"))
        return Report(
            source=str(options.src),
            versions=versions(),
            files=[gathered.files[name] for name in sorted(gathered.files)],
            pools=references.undeclared(gathered.pools, references.declared_pools(options.project)),
            connections=references.undeclared(
                gathered.connections, references.declared_connection_ids(options.project)
            ),
            config=config_check.result() if config_check else None,
        )
    finally:
        if config_check:
            config_check.close()
        shutil.rmtree(scratch, ignore_errors=True)


def static_checks(tree: sources.SourceTree) -> Gathered:
    """Ruff, then each file's syntax tree: runtime patterns and the pools and connections it names."""
    gathered = Gathered({name: FileReport(name, name in tree.dag_files) for name in tree.python_files})
    code = lint.lint(tree.root, list(tree.python_files))
    for finding in code:
        gathered.add(finding)
    quoted = lint.symbols_by_line(code)
    for name, file in gathered.files.items():
        syntax, problem = syntax_tree(name, tree.root / name)
        if problem:
            gathered.add(problem)
            continue
        for finding in patterns.runtime_findings(name, syntax, quoted):
            gathered.add(finding)
        used_pools, used_connections = references.source_references(syntax)
        gathered.uses(gathered.pools, used_pools, name)
        gathered.uses(gathered.connections, used_connections, name)
        if file.dag_file:
            gathered.dag_files.append(name)
            gathered.airflow_imports |= airflow_modules(syntax)
    return gathered


def import_dag_files(
    tree: sources.SourceTree, options: Options, scratch: Path, gathered: Gathered, fixed: list[str]
) -> dict[str, ParseResult]:
    """Every DAG file as it is, and as ruff's safe fixes left it in scratch/fixed (keys "fixed:<path>")."""
    fixed_root, home = scratch / "fixed", scratch / "airflow-home"
    search = (str(tree.dags_folder), str(tree.plugins_folder or tree.dags_folder))
    fixed_search = (str(fixed_root / tree.dags_folder.relative_to(tree.root)), str(fixed_root / "plugins"))
    jobs = [parsing.ParseJob(name, tree.root / name, search) for name in gathered.dag_files]
    jobs += [
        parsing.ParseJob(f"fixed:{name}", fixed_root / name, fixed_search)
        for name in fixed
        if gathered.files[name].dag_file
    ]
    if not jobs:
        return {}
    home.mkdir()
    os.environ.setdefault("AIRFLOW_CONFIG", str(options.project / "config" / "airflow.cfg"))
    os.environ.update(parsing.airflow_environment(home, tree.dags_folder, tree.plugins_folder, options.timeout))
    parsed = parsing.parse_files(jobs, options.timeout, options.jobs, sorted(gathered.airflow_imports))
    for key, result in parsed.items():
        root = str(fixed_root if key.startswith("fixed:") else tree.root)
        result.error = result.error and tidy(result.error, root)
        result.traceback = result.traceback and tidy(result.traceback, root)
    return parsed


def record_imports(gathered: Gathered, parsed: dict[str, ParseResult]) -> None:
    """Import errors, dag_ids defined twice, and the pools and connections parsed tasks use."""
    owners: dict[str, list[str]] = {}
    for name in gathered.dag_files:
        result = gathered.files[name].parse = parsed[name]
        if not result.ok:
            gathered.add(parse_finding(name, result))
        for dag_id in result.dag_ids:
            owners.setdefault(dag_id, []).append(name)
        gathered.uses(gathered.pools, result.pools, name)
        gathered.uses(gathered.connections, result.connections, name)
    for dag_id, names in owners.items():
        for name in names[1:]:
            text = f"dag_id `{dag_id}` is also defined in {names[0]}: Airflow 3 keeps only one"
            gathered.add(Finding(name, 0, "import", "duplicate-dag-id", text, True, "duplicate dag_id"))


def classify(
    file: FileReport, candidate: bool, outcome: FixOutcome, relinted: list[Finding], fixed: ParseResult | None
) -> None:
    if not any(finding.blocking for finding in file.findings):
        file.status = CLEAN
    elif candidate and (problem := why_not_auto_fixed(file.path, outcome, relinted, fixed)) is None:
        file.status = AUTO_FIX
    else:
        if candidate:
            file.findings.append(problem)
        file.status = MANUAL
    file.findings.sort(key=lambda finding: (finding.line, finding.category, finding.rule, finding.column))
