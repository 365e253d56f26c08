"""Ruff's safe fixes for the Airflow 3 rules, applied in a folder and then checked.

Checked on ruff 0.17.6, each case handled here:
- Some fixes never finish: on module-attribute imports (`from airflow.operators import bash_operator`
  then `bash_operator.BashOperator(...)`) ruff prints "Failed to converge after 100 iterations"
  and leaves a half-edited file. That file is put back as it was and named.
- A fix can produce a file Python refuses: `DAG(schedule_interval=..., timetable=...)` becomes two
  `schedule=` keywords. That file is put back as it was and named.
- A fix that moves a name (`DummyOperator` to the standard provider's `EmptyOperator`) adds the
  new import but keeps the old one, which still fails on Airflow 3. Ruff's own F401 fix then
  removes the airflow imports left unused in the files it changed; no other import is touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from scripts.upgrade_check.lint import ruff_check, ruff_json

NOT_CONVERGED = re.compile(r"Failed to converge after \d+ iterations.*?quoting the contents of `([^`]+)`", re.DOTALL)
LEFTOVER_PASSES = 5


@dataclass
class FixOutcome:
    changed: list[str] = field(default_factory=list)
    not_converged: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def line_offsets(text: str) -> list[int]:
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def apply_edits(text: str, edits: list[dict]) -> str:
    """Apply ruff's JSON edits (1-based rows and columns), last first; overlapping ones wait for the next pass."""
    offsets = line_offsets(text)

    def position(location: dict) -> int:
        return offsets[location["row"] - 1] + location["column"] - 1

    spans = sorted({(position(e["location"]), position(e["end_location"]), e["content"]) for e in edits}, reverse=True)
    kept_start = len(text) + 1
    for start, end, content in spans:
        if end <= kept_start:
            text = text[:start] + content + text[end:]
            kept_start = start
    return text


def remove_leftover_airflow_imports(root: Path, files: list[str]) -> None:
    """Ruff's F401 fix, only for `airflow.*` imports that nothing uses any more."""
    for _ in range(LEFTOVER_PASSES):
        edits: dict[str, list[dict]] = {}
        for item in ruff_json(root, files, rules=("F401",)):
            name = item["message"].split("`")[1] if "`" in item["message"] else ""
            fix = item.get("fix") or {}
            if name.startswith("airflow.") and fix.get("applicability") == "safe":
                edits.setdefault(item["filename"], []).extend(fix["edits"])
        if not edits:
            return
        for name, file_edits in edits.items():
            path = root / name
            path.write_text(apply_edits(path.read_text(), file_edits))


def compiles(path: Path) -> bool:
    try:
        compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def apply_safe_fixes(root: Path, files: list[str]) -> FixOutcome:
    """Fix the files in place under root; files that went wrong are restored and named."""
    originals = {name: (root / name).read_bytes() for name in files}
    outcome = FixOutcome()
    runs = ruff_check(root, files, "--fix", "--output-format=concise")
    stuck = {match for run in runs for match in NOT_CONVERGED.findall(run.stderr)}
    changed = [name for name in files if (root / name).read_bytes() != originals[name]]
    for name in changed:
        if any(Path(root, reported).resolve() == (root / name).resolve() for reported in stuck):
            outcome.not_converged.append(name)
    # A ruff that gives up without saying so still leaves a safe fix behind.
    leftover = {
        item["filename"] for item in ruff_json(root, changed) if (item.get("fix") or {}).get("applicability") == "safe"
    }
    outcome.not_converged = sorted(set(outcome.not_converged) | (leftover & set(changed)))
    kept = [name for name in changed if name not in outcome.not_converged]
    remove_leftover_airflow_imports(root, kept)
    outcome.invalid = [name for name in kept if not compiles(root / name)]
    for name in outcome.not_converged + outcome.invalid:
        (root / name).write_bytes(originals[name])
    outcome.changed = [name for name in kept if name not in outcome.invalid]
    return outcome
