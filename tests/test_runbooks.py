"""The runbooks: every alert links one that exists and names the alert; every `airflow` command they cite
(in code blocks, inline, and in the rules' text) exists in Airflow's CLI and parses."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess

import pytest
from helpers import PROBES, BakedProject, last_json_line, project_venv
from monitoring import RULES, alert_rules


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors for a page's headings."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    return {re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("variant", ["local", "kubernetes"])  # metrics: statsd, otel
def test_every_alert_links_a_runbook_that_exists(baked, variant):
    project = baked(variant)
    for rule in alert_rules(project):
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert (project.path / path).is_file(), f"{rule['alert']}: {path} does not exist"
        page = project.read(path)
        assert rule["alert"] in page, f"{path} does not mention {rule['alert']}"
        assert not anchor or anchor in heading_anchors(page), f"{rule['alert']}: no heading #{anchor} in {path}"
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]


def runbook_commands(project: BakedProject) -> set[tuple[str, ...]]:
    """Every `airflow ...` command in the runbooks' code (blocks and inline) and the rules' text."""
    pages = (project.path / "docs" / "runbooks").glob("*.md")
    texts = [page.read_text() for page in pages]
    if (project.path / RULES).exists():
        texts.append(project.read(RULES))
    snippets = []
    for text in texts:
        for block in re.findall(r"^ *```bash\n(.*?)^ *```", text, re.M | re.S):
            snippets += block.replace("\\\n", " ").splitlines()
        snippets += re.findall(r"(?<!`)`(airflow [^`]+)`", text)
    commands = set()
    for snippet in snippets:
        snippet = snippet.strip().split(" #", 1)[0]
        if snippet.startswith("airflow "):
            commands.add(tuple(shlex.split(snippet)[1:]))
    return commands


# Airflow 2 commands that runbooks written for it cite, which Airflow 3.3 no longer has: the check must refuse them.
GONE_IN_AIRFLOW_3 = [("tasks", "mark-success", "my_dag", "my_task", "2024-01-15"), ("scheduler", "--do-pickle")]


@pytest.mark.airflow
def test_every_cli_command_the_runbooks_cite_exists(baked, tmp_path):
    project = baked("local")
    venv = project_venv(project)
    commands = sorted(runbook_commands(project))
    assert len(commands) >= 15 and ("dags", "list-import-errors") in commands
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW_CONFIG": str(project.path / "config" / "airflow.cfg")}
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(PROBES / "cli_commands.py")],
        input=json.dumps(commands + GONE_IN_AIRFLOW_3),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    *cited, mark_success, do_pickle = last_json_line(result.stdout)
    for checked in cited:
        command = "airflow " + " ".join(checked["args"])
        assert checked["path"] and checked["leaf"], f"{command}: no such command in Airflow's CLI"
        assert checked["help_code"] == 0, f"{command}: --help failed\n{checked['help']}"
        assert "airflow " + " ".join(checked["path"]) in " ".join(checked["help"].split()), checked["help"]
        assert checked["parse_code"] == 0, f"{command}: does not parse\n{checked['parse']}"
    assert not mark_success["leaf"] and mark_success["parse_code"] != 0
    assert do_pickle["leaf"] and do_pickle["help_code"] == 0 and do_pickle["parse_code"] != 0
