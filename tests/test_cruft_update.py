"""Update tier: projects made with cruft take the template's changes and keep every team edit.

A git copy of this template is commit A. `cruft create` makes a project from it, which the team
edits and commits. Commit B then changes the template, and `cruft update` must bring all of B
into the project without losing an edit, writing a .rej file or leaving a conflict marker.
Everything runs the real cruft and cookiecutter CLIs against local paths, never the network.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from git_server import GitServer, git_http_server
from helpers import (
    NOT_TEMPLATE,
    SECRET_FILES,
    TEMPLATE_DIR,
    TOOLS_BIN,
    BakedProject,
    airflow_env,
    project_venv,
    run,
)

CRUFT = str(TOOLS_BIN / "cruft")
COOKIECUTTER = str(TOOLS_BIN / "cookiecutter")
SLUG = "data_platform_airflow"
TEMPLATE_PROJECT = "{{cookiecutter.project_slug}}"
OVERRIDES = "config/airflow.overrides.env"
RUNS_PER_DAG = re.compile(r"^max_active_runs_per_dag = (\d+)$", re.M)
WORKFLOW = ".github/workflows/template-update.yml"
CONFLICT = re.compile(r"^<<<<<<< ours\n(.*?)^=======\n(.*?)^>>>>>>> theirs\n", re.M | re.S)


def replace_once(text: str, pattern: str, replacement: str) -> str:
    """The text with the one match of pattern replaced; fails loudly if the template moved on."""
    changed, count = re.subn(pattern, replacement, text, flags=re.M)
    assert count == 1, f"expected one match of {pattern!r}, found {count}"
    return changed


# The edits a team makes, as functions of a file's text, so that the same edit can be applied
# to a fresh bake to say exactly what the updated project must hold.
def append_team_notes(text: str) -> str:
    return text + "\n## Team notes\n\nOn call: the data-platform rota, escalated in #data-platform-oncall.\n"


TEAM_POOL = """  "team_exports": {
    "slots": 2,
    "description": "Exports to finance.",
    "include_deferred": false
  }"""


def add_team_pool(text: str) -> str:
    return replace_once(text, r"^  }\n}\n\Z", "  },\n" + TEAM_POOL + "\n}\n")


def tag_team_reviewed(text: str) -> str:
    return replace_once(text, r"^(    tags=\[.*)\],$", r'\1, "team-reviewed"],')


def tune_overrides(text: str) -> str:
    return text + "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=24\n"


TEAM_EDITS: dict[str, Callable[[str], str]] = {
    "README.md": append_team_notes,
    "config/pools.json": add_team_pool,
    "dags/example_safe_taskflow.py": tag_team_reviewed,
}
TEAM_DELETED = "dags/example_large_xcom.py"
TEAM_DAG = "dags/team_exports.py"
TEAM_DAG_SOURCE = f'''"""Nightly export of settled orders to finance: the team's own DAG, unknown to the template."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from {SLUG}.dag_defaults import daily_intervals, default_args
from {SLUG}.run_dates import data_window


@dag(
    schedule=daily_intervals(),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    tags=["team", "finance"],
    doc_md=__doc__,
)
def team_exports():
    @task(pool="team_exports")
    def export(dag_run=None) -> str:
        # The documented rule: a run triggered without a logical date has no data interval.
        return f"exported {{data_window(dag_run).start}}"

    export()


team_exports()
'''

# Template commit B: a retuned value, a new file, a new test, a pool change, and changes to
# files the team edited elsewhere, deleted, or owns outright.
NEW_TEMPLATE_FILE = "docs/on_call.md"
NEW_POLICY_TEST = """

def test_every_dag_id_is_a_python_identifier(dag_bag):
    # DAG ids end up in file names, metric names and URLs.
    odd = sorted(dag_id for dag_id in dag_bag.dags if not dag_id.isidentifier())
    assert not odd, f"use letters, digits and _ in these DAG ids: {odd}"
"""


@dataclass
class TemplateB:
    runs_per_dag: int  # the retuned [core] max_active_runs_per_dag
    first_pool_slots: int


def change_template(template: Path) -> TemplateB:
    """Make commit B's changes in the template repo."""
    project = template / TEMPLATE_PROJECT
    cfg = project / "config" / "airflow.cfg"
    runs = int(RUNS_PER_DAG.search(cfg.read_text())[1]) + 1
    cfg.write_text(replace_once(cfg.read_text(), RUNS_PER_DAG.pattern, f"max_active_runs_per_dag = {runs}"))
    (project / NEW_TEMPLATE_FILE).parent.mkdir(exist_ok=True)
    (project / NEW_TEMPLATE_FILE).write_text("# {{ cookiecutter.project_name }} on call\n\nWho to call, and when.\n")
    policy = project / "tests" / "test_dag_policy.py"
    policy.write_text(policy.read_text() + NEW_POLICY_TEST)
    # The first pool: far from the end of the file, where the team adds theirs.
    pools = project / "config" / "pools.json"
    slots = int(re.search(r'"slots": (\d+),', pools.read_text())[1]) + 1
    pools.write_text(re.sub(r'"slots": \d+,', f'"slots": {slots},', pools.read_text(), count=1))
    for name in ("dags/example_safe_taskflow.py", TEAM_DELETED):
        dag = project / name
        dag.write_text(replace_once(dag.read_text(), r'\A"""', '"""Template B. '))
    overrides = project / OVERRIDES
    overrides.write_text("# Template B\n" + overrides.read_text())
    return TemplateB(runs, slots)


def isolated_env(root: Path) -> dict[str, str]:
    """Git and cookiecutter that read no user or system config and write only under root."""
    config = root / "cookiecutter.yaml"
    config.write_text(f"cookiecutters_dir: {root / 'cookiecutters'}\nreplay_dir: {root / 'replay'}\n")
    return {
        **os.environ,
        "HOME": str(root),
        "COOKIECUTTER_CONFIG": str(config),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Data Platform",
        "GIT_AUTHOR_EMAIL": "data-platform@example.com",
        "GIT_COMMITTER_NAME": "Data Platform",
        "GIT_COMMITTER_EMAIL": "data-platform@example.com",
    }


def git(repo: Path, env: dict, *args: str) -> str:
    return run(["git", *args], cwd=repo, env=env).stdout


def commit_all(repo: Path, env: dict, message: str) -> str:
    git(repo, env, "add", "--all")
    git(repo, env, "commit", "--quiet", "--message", message)
    return git(repo, env, "rev-parse", "HEAD").strip()


def unmerged(repo: Path, env: dict) -> list[str]:
    return git(repo, env, "diff", "--name-only", "--diff-filter=U").split()


def conflict_leftovers(project: Path) -> list[str]:
    """.rej files, and files with a conflict marker line."""
    leftovers = [str(path.relative_to(project)) for path in project.rglob("*.rej")]
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            if re.search(r"^(<<<<<<<|>>>>>>>) ", path.read_text(errors="replace"), re.M):
                leftovers.append(str(path.relative_to(project)))
    return leftovers


def project_at(story: Story, commit: str, destination: Path) -> Path:
    """A clone of the story's project, checked out at one of its commits."""
    project = destination / SLUG
    git(destination, story.env, "clone", "--quiet", str(story.project), str(project))
    git(project, story.env, "reset", "--quiet", "--hard", commit)
    return project


def retune_in_airflow_cfg(project: Path, env: dict) -> None:
    """The team changes the line that template commit B changes too."""
    cfg = project / "config" / "airflow.cfg"
    cfg.write_text(replace_once(cfg.read_text(), RUNS_PER_DAG.pattern, "max_active_runs_per_dag = 10"))
    commit_all(project, env, "Team retunes airflow.cfg itself")


def cruft_state(project: Path) -> dict:
    return json.loads((project / ".cruft.json").read_text())


def bake_fresh(template: Path, output: Path, env: dict, **answers: str) -> Path:
    """What `cookiecutter` makes today from the template repo's checked-out commit."""
    options = [f"{name}={value}" for name, value in answers.items()]
    output.mkdir(exist_ok=True)
    run([COOKIECUTTER, "--no-input", "--output-dir", str(output), str(template), *options], cwd=output, env=env)
    return output / SLUG


def assert_is_fresh_bake_with_team_edits(project: Path, fresh: Path, env: dict, overrides: str) -> None:
    """The project holds exactly a fresh bake's files, plus the team's: nothing more, nothing lost."""
    fresh_files = {str(path.relative_to(fresh)) for path in fresh.rglob("*") if path.is_file()} - SECRET_FILES
    tracked = set(git(project, env, "ls-files").split())
    assert tracked == (fresh_files - {TEAM_DELETED}) | {TEAM_DAG, ".cruft.json"}
    differing = []
    for name in sorted(fresh_files - {TEAM_DELETED, OVERRIDES}):
        expected = (fresh / name).read_text()
        expected = TEAM_EDITS[name](expected) if name in TEAM_EDITS else expected
        mode = (project / name).stat().st_mode & 0o111, (fresh / name).stat().st_mode & 0o111
        if (project / name).read_text() != expected or mode[0] != mode[1]:
            differing.append(name)
    assert not differing, f"not the template's content plus the team's edits: {differing}"
    assert (project / OVERRIDES).read_text() == overrides
    assert (project / TEAM_DAG).read_text() == TEAM_DAG_SOURCE


@dataclass
class Story:
    env: dict
    template: Path
    project: Path
    commit_a: str
    commit_b: str
    created: str  # the project's first commit: what cruft create made
    edited: str  # the project's commit with the team's edits, before the update
    b: TemplateB
    overrides: str  # the team's config/airflow.overrides.env
    env_file: bytes  # .env as cruft create wrote it
    check_before: subprocess.CompletedProcess
    update: subprocess.CompletedProcess
    unmerged: list[str]
    leftovers: list[str]
    check_after: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Story:
    """Create at A, edit as a team, move the template to B, update; then commit the update."""
    root = tmp_path_factory.mktemp("cruft-update")
    env = isolated_env(root)
    template = root / "airflow-template"
    shutil.copytree(TEMPLATE_DIR, template, ignore=NOT_TEMPLATE)
    git(template, env, "init", "--quiet", "--initial-branch=main")
    commit_a = commit_all(template, env, "A")

    run([CRUFT, "create", "--no-input", "--output-dir", str(root / "projects"), str(template)], cwd=root, env=env)
    project = root / "projects" / SLUG
    git(project, env, "init", "--quiet", "--initial-branch=main")
    created = commit_all(project, env, "Made with cruft create")

    for name, edit in TEAM_EDITS.items():
        (project / name).write_text(edit((project / name).read_text()))
    (project / OVERRIDES).write_text(tune_overrides((project / OVERRIDES).read_text()))
    (project / TEAM_DAG).write_text(TEAM_DAG_SOURCE)
    (project / TEAM_DELETED).unlink()
    edited = commit_all(project, env, "Team edits")

    b = change_template(template)
    commit_b = commit_all(template, env, "B")

    env_file = (project / ".env").read_bytes()
    check_before = run([CRUFT, "check"], cwd=project, env=env, check=False)
    update = run([CRUFT, "update", "-y"], cwd=project, env=env)
    story = Story(
        env=env,
        template=template,
        project=project,
        commit_a=commit_a,
        commit_b=commit_b,
        created=created,
        edited=edited,
        b=b,
        overrides=(project / OVERRIDES).read_text(),
        env_file=env_file,
        check_before=check_before,
        update=update,
        unmerged=unmerged(project, env),
        leftovers=conflict_leftovers(project),
        check_after=run([CRUFT, "check"], cwd=project, env=env, check=False),
    )
    commit_all(project, env, "Update from the template")
    return story


def test_cruft_create_makes_what_cookiecutter_makes(story, tmp_path):
    assert not list((TEMPLATE_DIR / "hooks").glob("pre_prompt*")), "cruft never runs a pre_prompt hook"
    created = project_at(story, story.created, tmp_path)
    template_at_a = tmp_path / "template-at-a"
    template_at_a.mkdir()
    git(story.template, story.env, "archive", f"--output={tmp_path / 'a.tar'}", story.commit_a)
    run(["tar", "--extract", f"--file={tmp_path / 'a.tar'}"], cwd=template_at_a)
    fresh = bake_fresh(template_at_a, tmp_path / "cookiecutter", story.env)
    fresh_files = {str(path.relative_to(fresh)) for path in fresh.rglob("*") if path.is_file()} - SECRET_FILES
    assert set(git(created, story.env, "ls-files").split()) == fresh_files | {".cruft.json"}
    assert [name for name in sorted(fresh_files) if (created / name).read_bytes() != (fresh / name).read_bytes()] == []
    assert cruft_state(created)["commit"] == story.commit_a
    assert b"AIRFLOW__CORE__FERNET_KEY=" in story.env_file, "the post-gen hook runs under cruft"


def test_cruft_check_tells_when_the_template_moved(story):
    assert story.check_before.returncode == 1
    assert "out of date" in story.check_before.stdout
    assert story.check_after.returncode == 0, story.check_after.stdout
    assert cruft_state(story.project)["commit"] == story.commit_b


def test_update_brings_every_template_change(story):
    project = story.project
    assert RUNS_PER_DAG.search((project / "config" / "airflow.cfg").read_text())[1] == str(story.b.runs_per_dag)
    assert (project / NEW_TEMPLATE_FILE).read_text().startswith("# Data Platform Airflow on call\n")
    assert (project / "tests" / "test_dag_policy.py").read_text().endswith(NEW_POLICY_TEST)
    assert f'"slots": {story.b.first_pool_slots},' in (project / "config" / "pools.json").read_text()
    assert (project / "dags" / "example_safe_taskflow.py").read_text().startswith('"""Template B. ')


def test_update_keeps_every_team_edit(story):
    project = story.project
    assert (project / "README.md").read_text().endswith(append_team_notes(""))
    assert json.loads((project / "config" / "pools.json").read_text())["team_exports"]["slots"] == 2
    assert '"team-reviewed"]' in (project / "dags" / "example_safe_taskflow.py").read_text()
    assert (project / TEAM_DAG).read_text() == TEAM_DAG_SOURCE
    assert not (project / TEAM_DELETED).exists(), "a DAG the team deleted came back"
    # Skipped: the team's overrides never see the template's change, .env keeps its secrets.
    assert story.overrides.endswith(tune_overrides("")) and not story.overrides.startswith("# Template B")
    assert (project / ".env").read_bytes() == story.env_file


def test_update_leaves_no_reject_or_conflict(story):
    assert story.unmerged == [] and story.leftovers == []
    output = story.update.stdout + story.update.stderr
    assert "conflicts" not in output and ".rej" not in output, output


def test_updated_project_is_the_new_template_plus_the_team_edits(story, tmp_path):
    fresh = bake_fresh(story.template, tmp_path, story.env)
    assert_is_fresh_bake_with_team_edits(story.project, fresh, story.env, story.overrides)


def test_cruft_diff_shows_the_team_edits_and_nothing_it_skips(story):
    result = run([CRUFT, "diff", "--exit-code"], cwd=story.project, env=story.env, check=False)
    assert result.returncode == 1
    differing = set(re.findall(r"^diff --git upstream-template-old/(\S+) ", result.stdout, re.M))
    assert differing == set(TEAM_EDITS), result.stdout[-4000:]


def test_team_overrides_reach_make_and_docker_compose(story):
    name, _, value = tune_overrides("").strip().partition("=")
    show = f"show:\n\t@printenv {name}\n"
    make = subprocess.run(
        ["make", "--no-print-directory", "-f", "Makefile", "-f", "-", "show"],
        cwd=story.project,
        input=show,
        capture_output=True,
        text=True,
        check=True,
    )
    assert make.stdout.strip() == value
    compose = run(
        [str(TOOLS_BIN / "docker-compose"), "config", "--format", "json"],
        cwd=story.project,
        env={**story.env, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    services = json.loads(compose.stdout)["services"]
    # Every service that runs Airflow (the stand-in APIs share the image but not Airflow's settings).
    runs_airflow = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
    airflow_services = [service for service in services.values() if runs_airflow in service.get("environment", {})]
    assert airflow_services and all(service["environment"][name] == value for service in airflow_services)


def test_same_line_edit_is_reported_as_a_conflict_that_keeps_both_versions(story, tmp_path):
    project = project_at(story, story.edited, tmp_path)
    retune_in_airflow_cfg(project, story.env)

    result = run([CRUFT, "update", "-y"], cwd=project, env=story.env)
    cfg = project / "config" / "airflow.cfg"

    assert "Applied patch to 'config/airflow.cfg' with conflicts." in result.stderr + result.stdout
    assert unmerged(project, story.env) == ["config/airflow.cfg"]
    ours, theirs = CONFLICT.search(cfg.read_text()).groups()
    assert ours == "max_active_runs_per_dag = 10\n"
    assert theirs == f"max_active_runs_per_dag = {story.b.runs_per_dag}\n"
    # Everything else in B still arrived, next to every team edit, with nothing in a .rej file.
    assert (project / NEW_TEMPLATE_FILE).exists() and (project / "tests" / "test_dag_policy.py").read_text().endswith(
        NEW_POLICY_TEST
    )
    assert conflict_leftovers(project) == ["config/airflow.cfg"]
    assert '"team-reviewed"]' in (project / "dags" / "example_safe_taskflow.py").read_text()
    assert cruft_state(project)["commit"] == story.commit_b


def test_a_project_made_before_the_compile_extensions_updates_to_them(tmp_path):
    # cruft bakes the project's old template version and then the new one in one process, so the
    # second bake finds the first one's local_extensions in sys.modules: an extension that the
    # new cookiecutter.json names must come from a module the old version did not have.
    env = isolated_env(tmp_path)
    template = tmp_path / "airflow-template"
    shutil.copytree(TEMPLATE_DIR, template, ignore=NOT_TEMPLATE)
    settings = json.loads((template / "cookiecutter.json").read_text())
    before = [name for name in settings["_extensions"] if not name.startswith("compile_less.")]
    assert before == ["local_extensions.AnswerGuard"], settings["_extensions"]
    (template / "cookiecutter.json").write_text(json.dumps({**settings, "_extensions": before}, indent=2))
    (template / "compile_less.py").unlink()
    git(template, env, "init", "--quiet", "--initial-branch=main")
    commit_before = commit_all(template, env, "Before compile_less.py")
    shutil.copytree(TEMPLATE_DIR, template, ignore=NOT_TEMPLATE, dirs_exist_ok=True)
    commit_all(template, env, "With compile_less.py")

    projects = tmp_path / "projects"
    run(
        [CRUFT, "create", "--no-input", "--checkout", commit_before, "--output-dir", str(projects), str(template)],
        tmp_path,
        env,
    )
    project = projects / SLUG
    git(project, env, "init", "--quiet", "--initial-branch=main")
    commit_all(project, env, "Made with cruft create")

    update = run([CRUFT, "update", "-y"], cwd=project, env=env, check=False)
    assert update.returncode == 0, update.stdout + update.stderr
    assert run([CRUFT, "check"], cwd=project, env=env, check=False).returncode == 0


def test_switching_the_executor_adds_and_removes_the_right_files(story, tmp_path):
    project = project_at(story, "HEAD", tmp_path)
    kubernetes_files = {
        "dags/example_kubernetes_offload.py",
        "deploy/helm/values.yaml",
        "deploy/k8s/pod_template.yaml",
        "tests/helm_chart_schema.json",
        "tests/test_helm_values.py",
        "tests/test_task_pods.py",
    }
    before = set(git(project, story.env, "ls-files").split())
    for executor, added, removed in (
        ("CeleryExecutor", set(), set()),
        ("CeleryKubernetesExecutor", kubernetes_files, set()),
        ("LocalExecutor", set(), kubernetes_files),
    ):
        changed = json.dumps({"executor": executor})
        run([CRUFT, "update", "-y", "--variables-to-update", changed], cwd=project, env=story.env)
        assert unmerged(project, story.env) == [] and conflict_leftovers(project) == [], executor
        commit_all(project, story.env, f"Switch to {executor}")
        after = set(git(project, story.env, "ls-files").split())
        assert (after - before, before - after) == (added, removed), executor
        assert cruft_state(project)["context"]["cookiecutter"]["executor"] == executor
        fresh = bake_fresh(story.template, tmp_path / executor, story.env, executor=executor)
        assert_is_fresh_bake_with_team_edits(project, fresh, story.env, story.overrides)
        before = after
    celery = (tmp_path / "CeleryExecutor" / SLUG).joinpath
    assert "[celery]" in celery("config/airflow.cfg").read_text()
    assert "apache-airflow-providers-celery" in celery("requirements.txt").read_text()
    assert "\n  worker:\n" in celery("docker-compose.yaml").read_text()


# Stand-ins for what the CI runner provides. Tokens are recognisable strings, so a test can look
# for them wherever they must not be.
WRITE_TOKEN = "test-write-token"
READ_TOKEN = "test-read-token"
EXPRESSION = re.compile(r"\$\{\{ ([^}]+) \}\}")


@dataclass
class Runner:
    """One CI machine: PATH stubs for gh and git, a log of every git command line, and a git
    server on loopback that asks for the write token, reached through the forge's own URL."""

    scratch: Path
    env: dict
    server: GitServer
    origin: Path
    forge_url: str

    @property
    def git_command_lines(self) -> list[list[str]]:
        log = self.scratch / "git-argv"
        return [entry.split("\0")[:-1] for entry in log.read_text().split("\0\n")[:-1]] if log.exists() else []

    @property
    def gh_arguments(self) -> list[str]:
        return (self.scratch / "gh-arguments").read_text().split("\0")[:-1]

    def environment(self, **variables: str) -> dict[str, str]:
        stubs = self.scratch / "bin"
        return {
            **self.env,
            "PATH": os.pathsep.join([str(stubs), str(TOOLS_BIN), os.environ["PATH"]]),
            # The forge's URL reaches the local server; credentials come only from what git is given.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"url.{self.server.url}/.insteadOf",
            "GIT_CONFIG_VALUE_0": f"{self.forge_url}/",
            "GIT_TERMINAL_PROMPT": "0",
            **variables,
        }

    def bash(self, script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
        return run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env)


@contextlib.contextmanager
def ci_runner(scratch: Path, env: dict, forge_url: str, username: str) -> Iterator[Runner]:
    stubs = scratch / "bin"
    stubs.mkdir()
    calls = scratch / "gh-arguments"
    # `gh pr list` finds no open pull request; `gh pr create` records its arguments.
    (stubs / "gh").write_text(
        f'#!/usr/bin/env bash\nif [ "$1 $2" = "pr list" ]; then echo 0; exit 0; fi\nprintf "%s\\0" "$@" > "{calls}"\n'
    )
    real_git = shutil.which("git")
    (stubs / "git").write_text(
        f'#!/usr/bin/env bash\nprintf "%s\\0" "$@" >> "{scratch / "git-argv"}"\n'
        f'printf "\\0\\n" >> "{scratch / "git-argv"}"\nexec {real_git} "$@"\n'
    )
    for stub in ("gh", "git"):
        (stubs / stub).chmod(0o755)
    root = scratch / "forge"
    root.mkdir()
    with git_http_server(root, username, WRITE_TOKEN, reader=("gitlab-ci-token", READ_TOKEN)) as server:
        origin = server.bare_repository(f"org/{SLUG}.git")
        yield Runner(scratch, env, server, origin, forge_url)


def github_env(workflow: dict, job: str, step: dict, values: dict[str, str]) -> dict[str, str]:
    """The variables GitHub gives one step: the workflow's, the job's and the step's own `env`,
    each `${{ }}` replaced from `values`; an expression this test does not know fails it."""

    def resolve(text: str) -> str:
        def value(match: re.Match) -> str:
            assert match[1] in values, f"the test does not know {match[0]}"
            return values[match[1]]

        return EXPRESSION.sub(value, str(text))

    merged = {**workflow.get("env", {}), **workflow["jobs"][job].get("env", {}), **step.get("env", {})}
    return {name: resolve(text) for name, text in merged.items()}


def run_github_job(runner: Runner, workflow: dict, job: str, checkout: Path, values: dict[str, str]) -> dict:
    """Run a job's `run:` steps in order, as GitHub would, skipping those whose `if:` is false
    (only `steps.<id>.outputs.<name> == '<value>'` conditions are used); returns the job's outputs."""
    outputs: dict[str, dict[str, str]] = {}
    temp = runner.scratch / f"runner-temp-{job}"
    temp.mkdir(exist_ok=True)
    values = {**values, "runner.temp": str(temp)}
    for step in workflow["jobs"][job]["steps"]:
        condition = (
            re.fullmatch(r"steps\.(\w+)\.outputs\.(\w+) == '(\w*)'", step.get("if", "")) if "if" in step else None
        )
        assert "if" not in step or condition, f"the test cannot evaluate if: {step['if']}"
        if condition and outputs.get(condition[1], {}).get(condition[2], "") != condition[3]:
            continue
        if "uses" in step or "pip install" in step.get("run", ""):
            continue  # actions, and installing cruft, which is on PATH already
        output_file = temp / f"output-{len(outputs)}"
        output_file.touch()
        step_values = {**values, **{f"steps.{i}.outputs.{k}": v for i, o in outputs.items() for k, v in o.items()}}
        env = runner.environment(
            **github_env(workflow, job, step, step_values),
            GITHUB_OUTPUT=str(output_file),
            RUNNER_TEMP=str(temp),
            GITHUB_SERVER_URL="https://github.com",
            GITHUB_REPOSITORY=f"org/{SLUG}",
        )
        runner.bash(step["run"], checkout, env)
        outputs[step.get("id", f"step{len(outputs)}")] = dict(
            line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
        )
    job_outputs = workflow["jobs"][job].get("outputs", {})
    flat = {f"steps.{i}.outputs.{k}": v for i, o in outputs.items() for k, v in o.items()}
    return {name: EXPRESSION.sub(lambda m: flat.get(m[1], ""), text) for name, text in job_outputs.items()}


def run_template_update_workflow(runner: Runner, project: Path, template_ref: str = "") -> dict:
    """The render job in the project's checkout, its artifact handed over, then the publish job in
    a fresh checkout of the same commit, as the two jobs run on two machines."""
    workflow = yaml.safe_load((project / WORKFLOW).read_text())
    workflow["on"] = workflow.pop(True)
    values = {
        "github.token": READ_TOKEN,
        "secrets.TEMPLATE_UPDATE_TOKEN": WRITE_TOKEN,
        "vars.TEMPLATE_REF": template_ref,
    }
    rendered = run_github_job(runner, workflow, "render", project, values)
    if rendered.get("changed") != "true":
        return rendered
    assert workflow["jobs"]["publish"]["needs"] == "render"
    publisher = runner.scratch / "publish-checkout"
    git(
        runner.scratch,
        runner.env,
        "clone",
        "--quiet",
        "--branch",
        "main",
        "--single-branch",
        str(project),
        str(publisher),
    )
    # upload-artifact and download-artifact between the jobs' runner.temp folders.
    (publish_temp := runner.scratch / "runner-temp-publish").mkdir()
    shutil.copytree(runner.scratch / "runner-temp-render" / "template-update", publish_temp / "template-update")
    needs = {f"needs.render.outputs.{name}": value for name, value in rendered.items()}
    run_github_job(runner, workflow, "publish", publisher, {**values, **needs})
    return rendered


HOSTILE_HOOK = """
import os, pathlib
pathlib.Path({record!r}).write_text(repr(dict(os.environ)))
"""


def template_with_a_hostile_hook(story: Story, scratch: Path) -> Path:
    """A clone of the template at B whose post-gen hook records the environment it runs in."""
    template = scratch / "compromised-template"
    git(scratch, story.env, "clone", "--quiet", str(story.template), str(template))
    hook = template / "hooks" / "post_gen_project.py"
    record = scratch / "hook-saw-environment"
    hook.write_text(
        hook.read_text().replace("\nimport base64\n", HOSTILE_HOOK.format(record=str(record)) + "import base64\n", 1)
    )
    commit_all(template, story.env, "C: a hook that records its environment")
    return template


@pytest.mark.parametrize("conflict", [False, True], ids=["clean", "conflict"])
def test_scheduled_workflow_pushes_the_update_and_opens_a_pull_request(story, tmp_path, conflict):
    project = project_at(story, story.edited, tmp_path)
    if conflict:
        retune_in_airflow_cfg(project, story.env)

    with ci_runner(tmp_path, story.env, "https://github.com", "x-access-token") as runner:
        run_template_update_workflow(runner, project)
        gh = runner.gh_arguments
        command_lines = runner.git_command_lines
        origin = runner.origin
        requests = runner.server.requests

    branch = yaml.safe_load((project / WORKFLOW).read_text())["env"]["BRANCH"]
    pushed = json.loads(git(origin, story.env, "show", f"{branch}:.cruft.json"))
    assert pushed["commit"] == story.commit_b
    assert gh[:2] == ["pr", "create"]
    assert gh[gh.index("--head") + 1] == branch
    assert gh[gh.index("--title") + 1] == f"Update from the template ({story.commit_b[:12]})"
    body = Path(gh[gh.index("--body-file") + 1]).read_text()
    # A pull request with conflicts opens as a draft that names the files to resolve.
    assert ("--draft" in gh) is conflict
    assert ("- config/airflow.cfg" in body) is conflict
    pushed_cfg = git(origin, story.env, "show", f"{branch}:config/airflow.cfg")
    assert bool(CONFLICT.search(pushed_cfg)) is conflict
    # The push authenticated with the token, which no git command line ever held.
    assert (f"/org/{SLUG}.git/git-receive-pack", f"x-access-token:{WRITE_TOKEN}") in requests
    assert any("push" in line for line in command_lines)
    assert not [line for line in command_lines if any(WRITE_TOKEN in arg or READ_TOKEN in arg for arg in line)]


def test_the_template_s_code_never_runs_with_a_token(story, tmp_path):
    # A compromised or careless template runs its hooks inside `cruft update`: they must find no
    # token, not even the read-only one, to send anywhere.
    project = project_at(story, story.edited, tmp_path)
    compromised = template_with_a_hostile_hook(story, tmp_path)
    state = cruft_state(project)
    state["template"] = str(compromised)
    (project / ".cruft.json").write_text(json.dumps(state, indent=2) + "\n")
    commit_all(project, story.env, "The template moved to a compromised repository")

    with ci_runner(tmp_path, story.env, "https://github.com", "x-access-token") as runner:
        rendered = run_template_update_workflow(runner, project)
        origin = runner.origin

    seen = (tmp_path / "hook-saw-environment").read_text()
    assert WRITE_TOKEN not in seen and READ_TOKEN not in seen
    assert rendered["changed"] == "true"
    assert json.loads(git(origin, story.env, "show", "template-update:.cruft.json"))["commit"] != story.commit_a


def test_the_workflow_updates_to_the_reviewed_ref_only(story, tmp_path):
    # TEMPLATE_REF pins the update to a reviewed tag or commit, even when the template has moved on.
    project = project_at(story, story.edited, tmp_path)
    compromised = template_with_a_hostile_hook(story, tmp_path)
    state = cruft_state(project)
    state["template"] = str(compromised)
    (project / ".cruft.json").write_text(json.dumps(state, indent=2) + "\n")
    commit_all(project, story.env, "Template URL")

    with ci_runner(tmp_path, story.env, "https://github.com", "x-access-token") as runner:
        run_template_update_workflow(runner, project, template_ref=story.commit_b)
        origin = runner.origin

    assert json.loads(git(origin, story.env, "show", "template-update:.cruft.json"))["commit"] == story.commit_b
    assert not (tmp_path / "hook-saw-environment").exists(), "the unreviewed commit C ran"


def run_gitlab_pipeline(runner: Runner, project: Path) -> subprocess.CompletedProcess:
    """The scheduled render job in the project's checkout, then the publish job in a fresh checkout
    with the render job's artifacts, as a runner would. TEMPLATE_UPDATE_TOKEN is scoped to the
    environment `template-update`: only a job that declares it gets the variable."""
    jobs = yaml.safe_load((project / ".gitlab" / "template-update.yml").read_text())
    # cruft is installed already, and tests never reach PyPI.
    python = shutil.which("python3")
    stub = runner.scratch / "bin" / "python"
    stub.write_text(f'#!/usr/bin/env bash\n[ "$1 $2" = "-m pip" ] && exit 0\nexec {python} "$@"\n')
    stub.chmod(0o755)
    predefined = {
        "CI_SERVER_HOST": "gitlab.example.com",
        "CI_PROJECT_PATH": f"org/{SLUG}",
        "CI_DEFAULT_BRANCH": "main",
    }

    def job_env(name: str, checkout: Path) -> dict[str, str]:
        job = jobs[name]
        scoped = (
            {"TEMPLATE_UPDATE_TOKEN": WRITE_TOKEN}
            if job.get("environment", {}).get("name") == "template-update"
            else {}
        )
        variables = {key: value.replace("$CI_PROJECT_DIR", str(checkout)) for key, value in job["variables"].items()}
        return runner.environment(**predefined, CI_PROJECT_DIR=str(checkout), **variables, **scoped)

    # The runner's clone fetches through the job's own read token; here, origin is the forge.
    git(project, runner.env, "remote", "set-url", "origin", f"https://gitlab.example.com/org/{SLUG}.git")
    render_env = job_env("template-update", project) | {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_1": "credential.helper",
        "GIT_CONFIG_VALUE_1": f"!f() {{ echo username=gitlab-ci-token; echo password={READ_TOKEN}; }}; f",
    }
    result = runner.bash("\n".join(jobs["template-update"]["script"]), project, render_env)
    assert jobs["template-update-publish"]["needs"] == ["template-update"]
    publisher = runner.scratch / "publish-checkout"
    if publisher.exists():
        shutil.rmtree(publisher)
    git(
        runner.scratch,
        runner.env,
        "clone",
        "--quiet",
        "--branch",
        "main",
        "--single-branch",
        str(project),
        str(publisher),
    )
    artifacts = project / ".template-update"
    if artifacts.exists():
        shutil.copytree(artifacts, publisher / ".template-update")
        shutil.rmtree(artifacts)
    published = runner.bash(
        "\n".join(jobs["template-update-publish"]["script"]), publisher, job_env("template-update-publish", publisher)
    )
    return subprocess.CompletedProcess(
        result.args, 0, result.stdout + published.stdout, result.stderr + published.stderr
    )


def test_scheduled_gitlab_job_opens_a_draft_merge_request_for_a_conflict(story, tmp_path):
    project = project_at(story, story.edited, tmp_path)
    # Move the project to GitLab CI, still at template commit A, then give it a conflict with B.
    to_gitlab = json.dumps({"ci_provider": "gitlab"})
    run(
        [CRUFT, "update", "-y", "--checkout", story.commit_a, "--variables-to-update", to_gitlab],
        cwd=project,
        env=story.env,
    )
    assert not (project / WORKFLOW).exists() and (project / ".gitlab" / "template-update.yml").exists()
    commit_all(project, story.env, "CI moves to GitLab")
    retune_in_airflow_cfg(project, story.env)

    with ci_runner(tmp_path, story.env, "https://gitlab.example.com", "template-update") as runner:
        origin = runner.origin
        git(project, story.env, "push", "--quiet", str(origin), "main")
        hook = origin / "hooks" / "pre-receive"
        record = (
            'for i in $(seq 0 $((GIT_PUSH_OPTION_COUNT - 1))); do v="GIT_PUSH_OPTION_$i"; printf "%s\\0" "${!v}"; done'
        )
        hook.write_text(f'#!/usr/bin/env bash\n{{ {record}; }} >> "{tmp_path / "push-options"}"\n')
        hook.chmod(0o755)

        run_gitlab_pipeline(runner, project)

        options = dict(
            option.partition("=")[::2] for option in (tmp_path / "push-options").read_text().split("\0")[:-1]
        )
        assert "merge_request.create" in options and options["merge_request.target"] == "main"
        assert options["merge_request.title"] == f"Draft: Update from the template ({story.commit_b[:12]})"
        assert "config/airflow.cfg" in options["merge_request.description"]
        assert CONFLICT.search(git(origin, story.env, "show", "template-update:config/airflow.cfg"))
        pushed = git(origin, story.env, "rev-parse", "template-update")
        assert (f"/org/{SLUG}.git/git-receive-pack", f"template-update:{WRITE_TOKEN}") in runner.server.requests
        assert not [line for line in runner.git_command_lines if any(WRITE_TOKEN in arg for arg in line)]

        # While that merge request waits, the next scheduled run leaves its branch alone.
        git(project, story.env, "switch", "--quiet", "main")
        second = run_gitlab_pipeline(runner, project)
        assert "still waits for review" in second.stdout
        assert git(origin, story.env, "rev-parse", "template-update") == pushed


def run_project_tests(project: Path, scratch: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The project's own pytest, in a venv with its pinned requirements, as `make test` runs it."""
    venv = project_venv(BakedProject(project, {}))
    python = str(venv / "bin" / "python")
    env = airflow_env(project, venv, scratch / "airflow-home")
    return run([python, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=project, env=env, check=check)


@pytest.mark.airflow
def test_project_suite_passes_after_the_update(story, tmp_path):
    # The suites that read what the team and the template both changed: DAGs, pools, config.
    suites = ["tests/test_dag_integrity.py", "tests/test_dag_policy.py", "tests/test_config.py"]
    result = run_project_tests(story.project, tmp_path, "-v", *suites)
    # The template's new test ran, and the team's override was checked and applied.
    assert "test_dag_policy.py::test_every_dag_id_is_a_python_identifier PASSED" in result.stdout
    assert "test_config.py::test_overrides_name_options_airflow_knows_and_applies PASSED" in result.stdout


@pytest.mark.airflow
def test_project_suite_rejects_a_broken_override(story, tmp_path):
    project = tmp_path / SLUG
    shutil.copytree(story.project, project, symlinks=True)
    broken = {
        "AIRFLOW__CORE__PARALELISM=8": "test_overrides_name_options_airflow_knows_and_applies",
        "AIRFLOW__CORE__FERNET_KEY=a-secret-that-must-not-be-committed": "test_overrides_hold_no_secrets",
        'AIRFLOW__CORE__PARALLELISM="8"': "test_overrides_are_plain_assignments",
    }
    with (project / OVERRIDES).open("a") as overrides:
        overrides.write("".join(f"{line}\n" for line in broken))
    result = run_project_tests(project, tmp_path, "-q", "-k", "overrides", "tests/test_config.py", check=False)
    assert result.returncode == 1
    failed = set(re.findall(r"^FAILED tests/test_config\.py::(\w+)", result.stdout, re.M))
    assert failed == set(broken.values()), result.stdout[-4000:]
    for line in broken:
        assert line.partition("=")[0] in result.stdout


def test_replay_reproduces_a_project_byte_for_byte(tmp_path):
    env = isolated_env(tmp_path)
    template = tmp_path / "airflow-template"
    shutil.copytree(TEMPLATE_DIR, template, ignore=NOT_TEMPLATE)
    answers = ["project_name=Replay Check", "executor=CeleryKubernetesExecutor", "ci_provider=gitlab", "metrics=otel"]
    run([COOKIECUTTER, "--no-input", "-o", str(tmp_path / "first"), str(template), *answers], cwd=tmp_path, env=env)
    (replay_file,) = (tmp_path / "replay").glob("*.json")
    run([COOKIECUTTER, "--replay", "-o", str(tmp_path / "replay-dir"), str(template)], cwd=tmp_path, env=env)
    # A replay file kept anywhere, as a team might keep one in its repository.
    answers_file = shutil.copy(replay_file, tmp_path / "answers.json")
    run(
        [COOKIECUTTER, "--replay-file", str(answers_file), "-o", str(tmp_path / "replay-file"), str(template)],
        cwd=tmp_path,
        env=env,
    )

    def snapshot(output: str) -> dict[str, tuple[bytes, int]]:
        project = tmp_path / output / "replay_check"
        return {
            str(path.relative_to(project)): (path.read_bytes(), path.stat().st_mode)
            for path in sorted(project.rglob("*"))
            if path.is_file()
        }

    first = snapshot("first")
    assert "deploy/helm/values.yaml" in first and ".gitlab/template-update.yml" in first
    for output in ("replay-dir", "replay-file"):
        again = snapshot(output)
        assert again.keys() == first.keys()
        differing = sorted(name for name in first if again[name] != first[name])
        assert differing == sorted(SECRET_FILES), f"{output}: only .env and .env.auth may differ, with fresh secrets"
