"""The old airflow.cfg through Airflow 3.3's own tools, on copies: the team's file is never written.

Checked on Airflow 3.3.2:
- `airflow config lint` lists options that moved or went away, and exits 0 either way.
- `airflow config update` without `--all-recommendations` proposes nothing for moves such as
  `[scheduler] max_threads` (Airflow rates them "recommended", not "breaking") and says "No updates
  needed", so it runs with that flag. It writes a `.bak`, even in its dry run.
- With `--fix` it rewrites the whole file: comments are dropped, values equal to Airflow 3's
  defaults are commented out, and "default changed" recommendations replace the team's value (it
  proposes `executor = LocalExecutor` for a CeleryExecutor setup). So the diff is a proposal to
  read: each change it lists is marked, and values that look secret are masked.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SENSITIVE_OPTION = re.compile(
    r"(password|secret|token|key|credential|conn\b|sql_alchemy_conn|broker_url|result_backend)"
)
OPTION_LINE = re.compile(r"^(?P<prefix>[-+ ]?\s*#?\s*)(?P<option>[A-Za-z0-9_.]+)(?P<equals>\s*=\s*)(?P<value>.*)$")
URL_CREDENTIALS = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
MASK = "<masked>"


@dataclass
class ConfigReport:
    path: str
    lint: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    diff: str = ""
    error: str | None = None

    def as_dict(self) -> dict:
        return {"path": self.path, "lint": self.lint, "changes": self.changes, "diff": self.diff, "error": self.error}


def mask_secrets(line: str) -> str:
    """The line with the value masked when the option or the value looks like a credential."""
    line = URL_CREDENTIALS.sub(rf"\1{MASK}@", line)
    match = OPTION_LINE.match(line)
    if match and SENSITIVE_OPTION.search(match["option"].lower()) and match["value"].strip():
        return f"{match['prefix']}{match['option']}{match['equals']}{MASK}"
    return line


def clean_environment(home: Path) -> dict[str, str]:
    """Airflow reading only the copied file: no AIRFLOW__* setting of this project leaks in."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    return {**env, "AIRFLOW_HOME": str(home), "AIRFLOW_CONFIG": str(home / "airflow.cfg")}


def bullets(output: str, after: str) -> list[str]:
    """The `  - ...` lines Airflow prints after a heading."""
    _, found, rest = output.partition(after)
    if not found:
        return []
    return [line.strip()[2:].strip() for line in rest.splitlines() if line.strip().startswith("- ")]


class ConfigCheck:
    """Starts lint and update at once, in the background; `result()` waits for both."""

    def __init__(self, cfg: Path, shown_as: str) -> None:
        self.cfg, self.shown_as = cfg, shown_as
        self.scratch = Path(tempfile.mkdtemp(prefix="upgrade-check-config-"))
        self.processes = {}
        for name, arguments in (("lint", ["lint"]), ("update", ["update", "--all-recommendations", "--fix"])):
            home = self.scratch / name
            home.mkdir()
            shutil.copyfile(cfg, home / "airflow.cfg")
            command = [sys.executable, "-m", "airflow", "config", *arguments]
            self.processes[name] = subprocess.Popen(
                command,
                cwd=home,
                env=clean_environment(home),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

    def close(self) -> None:
        """Stop whatever still runs and delete the copies; safe to call twice."""
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def result(self) -> ConfigReport:
        report = ConfigReport(self.shown_as)
        try:
            outputs = {name: process.communicate() for name, process in self.processes.items()}
            for name, process in self.processes.items():
                if process.returncode != 0:
                    stderr = outputs[name][1].strip().splitlines()
                    report.error = f"airflow config {name} failed: {stderr[-1] if stderr else 'no output'}"
                    return report
            report.lint = [
                mask_secrets(line) for line in bullets(outputs["lint"][0], "Found issues in your airflow.cfg:")
            ]
            changes = bullets(outputs["update"][0], "The following are the changes in airflow config:")
            report.changes = [mark_change(change) for change in changes]
            original = self.cfg.read_text().splitlines(keepends=True)
            proposed = (self.scratch / "update" / "airflow.cfg").read_text().splitlines(keepends=True)
            diff = difflib.unified_diff(original, proposed, "airflow.cfg (yours)", "airflow.cfg (proposed)")
            report.diff = "".join(mask_secrets(line.rstrip("\n")) + "\n" for line in diff)
        finally:
            self.close()
        return report


def mark_change(change: str) -> str:
    """Airflow's own wording, with a warning where it would change a value rather than move it."""
    if "Updated default value" in change:
        return f"{change} **Changes your value, not only its place: keep yours unless you mean it.**"
    return change
