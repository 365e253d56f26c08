"""Render tier: every variant bakes into exactly the expected, clean, parseable files."""

from __future__ import annotations

import configparser
import fnmatch
import json
import re
import stat
import tomllib

import pytest
import yaml
from helpers import SECRET_FILES, TEMPLATE_DIR, TOOLS_BIN, VARIANTS, BakedProject, bake, read_env_file, run

ALL_VARIANTS = pytest.mark.parametrize("variant", sorted(VARIANTS))
EXECUTOR_VARIANTS = pytest.mark.parametrize("variant", ["local", "celery", "kubernetes", "hybrid"])

BASE_FILES = {
    ".dockerignore",
    ".env",
    ".env.auth",
    ".env.example",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".yamllint.yaml",
    "Dockerfile",
    "Makefile",
    "README.md",
    "docker-compose.yaml",
    "config/airflow.cfg",
    "config/airflow.overrides.env",
    "config/pools.json",
    "constraints.txt",
    "dags/.airflowignore",
    "dags/README.md",
    "deploy/__init__.py",
    "deploy/__main__.py",
    "deploy/cli.py",
    "deploy/object_stores.py",
    "deploy/parse_wait.py",
    "deploy/project.py",
    "deploy/targets.py",
    "deploy/validate.py",
    "docs/access.md",
    "docs/alerting-and-monitoring.md",
    "docs/ci.md",
    "docs/configuration.md",
    "docs/deploying.md",
    "docs/layout.md",
    "docs/running-locally.md",
    "docs/updating-from-the-template.md",
    "docs/upgrading-from-airflow-2.md",
    "docs/runbooks/README.md",
    "docs/runbooks/parse-errors.md",
    "docs/runbooks/pool-starvation.md",
    "docs/runbooks/scheduler-down.md",
    "docs/runbooks/sensor-deadlock.md",
    "docs/runbooks/task-failures.md",
    "docs/runbooks/task-heartbeat-timeouts.md",
    "docs/runbooks/xcom-bloat.md",
    "monitoring/sql/scheduler_lag.sql",
    "monitoring/sql/stuck_tasks.sql",
    "monitoring/sql/success_rate.sql",
    "monitoring/sql/xcom_size_audit.sql",
    "plugins/.airflowignore",
    "plugins/{slug}/__init__.py",
    "plugins/{slug}/alerting.py",
    "plugins/{slug}/circuit_breaker.py",
    "plugins/{slug}/connections.py",
    "plugins/{slug}/dag_checks.py",
    "plugins/{slug}/dag_defaults.py",
    "plugins/{slug}/http_connections.py",
    "plugins/{slug}/incremental.py",
    "plugins/{slug}/process_checks.py",
    "plugins/{slug}/project_settings.py",
    "plugins/{slug}/quality.py",
    "plugins/{slug}/resilient_http.py",
    "plugins/{slug}/run_dates.py",
    "plugins/{slug}/sensors.py",
    "plugins/{slug}/triggers.py",
    "plugins/{slug}/xcom_backend.py",
    "plugins/task_preload.py",
    "pyproject.toml",
    "requirements-dev.txt",
    "requirements.txt",
    "scripts/__init__.py",
    "scripts/airflow_api.py",
    "scripts/dag_health.py",
    "scripts/run_local/__init__.py",
    "scripts/run_local/__main__.py",
    "scripts/run_local/common.py",
    "scripts/run_local/components.py",
    "scripts/run_local/postgres.py",
    "scripts/run_local/settings.py",
    "scripts/run_local/supervisor.py",
    "scripts/sync_pools.py",
    "tests/alert_contexts.py",
    "tests/conftest.py",
    "tests/local_servers.py",
    "tests/resilient_http_runs.py",
    "tests/test_airflow_api.py",
    "tests/test_alerting.py",
    "tests/test_circuit_breaker.py",
    "tests/test_config.py",
    "tests/test_connections.py",
    "tests/test_dag_health.py",
    "tests/test_dag_integrity.py",
    "tests/test_dag_policy.py",
    "tests/test_deploy.py",
    "tests/test_http_connections.py",
    "tests/test_deploy_targets.py",
    "tests/test_incremental.py",
    "tests/test_quality.py",
    "tests/test_resilient_http.py",
    "tests/test_resilient_http_retries.py",
    "tests/test_run_dates.py",
    "tests/test_sensors.py",
    "tests/test_sync_pools.py",
    "tests/test_task_preload.py",
    "tests/test_trigger_connections.py",
    "tests/test_triggers.py",
    "tests/trigger_runs.py",
    "tests/test_xcom_backend.py",
}
EXAMPLE_FILES = {
    "dags/config/tenants.yaml",
    "dags/example_api_ingest.py",
    "dags/example_deferrable_sensor.py",
    "dags/example_dynamic_mapping.py",
    "dags/example_incremental_load.py",
    "dags/example_large_xcom.py",
    "dags/example_quality_gate.py",
    "dags/example_safe_taskflow.py",
    "dags/tenant_pipelines.py",
    "plugins/{slug}/batch_processing.py",
    "plugins/{slug}/sample_orders.py",
    "plugins/{slug}/tenant_pipelines.py",
    "scripts/stand_ins.py",
    "tests/test_batch_processing.py",
    "tests/test_sample_orders.py",
    "tests/test_tenant_pipelines.py",
}
HYBRID_EXAMPLE_FILES = {"dags/example_kubernetes_offload.py"}
# alert channel -> the module that sends to it and its tests
ALERT_CHANNEL_FILES = {
    "slack": {"plugins/{slug}/slack_alerts.py", "tests/test_slack_alerts.py"},
    "email": {"plugins/{slug}/email_alerts.py", "tests/test_email_alerts.py"},
    "pagerduty": {"plugins/{slug}/pagerduty_alerts.py", "tests/test_pagerduty_alerts.py"},
    "none": set(),
}
KUBERNETES_FILES = {
    "deploy/helm/values.yaml",
    "deploy/k8s/pod_template.yaml",
    "tests/helm_chart_schema.json",
    "tests/test_helm_values.py",
    "tests/test_task_pods.py",
}
# FAB's roles as code and the init job that applies them.
FAB_FILES = {"config/access.yaml", "scripts/init_access.py", "tests/test_access.py"}
# make upgrade-check and make upgrade-fix, their tests and the Airflow 2 fixtures they read: every variant.
UPGRADE_CHECK_FILES = {
    "scripts/upgrade_check/__init__.py",
    "scripts/upgrade_check/__main__.py",
    "scripts/upgrade_check/check.py",
    "scripts/upgrade_check/cli.py",
    "scripts/upgrade_check/config.py",
    "scripts/upgrade_check/fixes.py",
    "scripts/upgrade_check/lint.py",
    "scripts/upgrade_check/model.py",
    "scripts/upgrade_check/parse_child.py",
    "scripts/upgrade_check/parsing.py",
    "scripts/upgrade_check/patterns.py",
    "scripts/upgrade_check/preload.py",
    "scripts/upgrade_check/references.py",
    "scripts/upgrade_check/report.py",
    "scripts/upgrade_check/sources.py",
    "scripts/upgrade_check/templates.py",
    "scripts/upgrade_check/workspace.py",
    "tests/test_upgrade_findings.py",
    "tests/test_upgrade_fix.py",
    "tests/upgrade_fixtures/README.md",
    "tests/upgrade_fixtures/airflow2_repo/airflow.cfg",
    "tests/upgrade_fixtures/airflow2_repo/dags/clean_classic.py",
    "tests/upgrade_fixtures/airflow2_repo/dags/clean_taskflow.py",
    "tests/upgrade_fixtures/airflow2_repo/dags/common/db_utils.py",
    "tests/upgrade_fixtures/airflow2_repo/dags/finance_close.py",
    "tests/upgrade_fixtures/airflow2_repo/dags/half_edited.py",
    "tests/upgrade_fixtures/airflow2_repo/dags/legacy_modules.py",
    "tests/upgrade_fixtures/airflow2_repo/dags/orders_cleanup.py",
    "tests/upgrade_fixtures/airflow2_repo/dags/partner_feeds.py",
    "tests/upgrade_fixtures/airflow2_repo/dags/sales_daily.py",
    "tests/upgrade_fixtures/airflow2_repo/dags/slow_vendor_check.py",
    "tests/upgrade_fixtures/airflow2_repo/dags/warehouse_load.py",
    "tests/upgrade_fixtures/airflow2_repo/plugins/operators/legacy_operator.py",
}
ALERT_RULE_FILES = {"monitoring/prometheus/airflow_rules.yaml", "monitoring/prometheus/airflow_rules_test.yaml"}
METRICS_FILES = {
    "statsd": {"monitoring/statsd_mapping.yaml"} | ALERT_RULE_FILES,
    "otel": {"monitoring/otel-collector.yaml"} | ALERT_RULE_FILES,
    "none": set(),
}
CI_FILES = {
    "github": {".github/workflows/ci.yml", ".github/workflows/template-update.yml"},
    "gitlab": {".gitlab-ci.yml", ".gitlab/template-update.yml"},
    "none": set(),
}

# executor choice -> ([core] executor, executor-specific cfg sections, executor-specific providers)
EXECUTORS = {
    "LocalExecutor": ("LocalExecutor", set(), set()),
    "CeleryExecutor": ("CeleryExecutor", {"celery"}, {"apache-airflow-providers-celery"}),
    "KubernetesExecutor": ("KubernetesExecutor", {"kubernetes_executor"}, {"apache-airflow-providers-cncf-kubernetes"}),
    "CeleryKubernetesExecutor": (
        "CeleryExecutor,KubernetesExecutor",
        {"celery", "kubernetes_executor"},
        {"apache-airflow-providers-celery", "apache-airflow-providers-cncf-kubernetes"},
    ),
}
# Cookiecutter syntax that must never survive rendering. Airflow's own `{{ ds }}` may.
LEFTOVER_MARKERS = ("cookiecutter.", "{%-", "-%}", "{% endif", "{% raw", "{% endraw")
SECRET_NAMES = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")
AUTH_CLASSES = {
    "fab": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
    "keycloak": "airflow.providers.keycloak.auth_manager.keycloak_auth_manager.KeycloakAuthManager",
}


def expected_files(project: BakedProject) -> set[str]:
    files = BASE_FILES | UPGRADE_CHECK_FILES
    if project.answer("include_examples"):
        files |= EXAMPLE_FILES
        if project.answer("executor") == "CeleryKubernetesExecutor":
            files |= HYBRID_EXAMPLE_FILES
    if project.answer("executor") in ("KubernetesExecutor", "CeleryKubernetesExecutor"):
        files |= KUBERNETES_FILES
    files |= CI_FILES[project.answer("ci_provider")]
    files |= ALERT_CHANNEL_FILES[project.answer("alert_chat")] | ALERT_CHANNEL_FILES[project.answer("alert_pager")]
    files |= METRICS_FILES[project.answer("metrics")]
    if project.answer("auth_manager") == "fab":
        files |= FAB_FILES
    return {name.format(slug=project.slug) for name in files}


def requirement_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[=<>;\[ ]", line, maxsplit=1)[0].lower())
    return names


@ALL_VARIANTS
def test_no_template_syntax_is_left(baked, variant):
    project = baked(variant)
    leftovers = [
        f"{name}: {marker}"
        for name in sorted(project.files())
        for marker in LEFTOVER_MARKERS
        if marker in project.read(name)
    ]
    assert not leftovers


@ALL_VARIANTS
def test_file_set_is_exactly_the_expected_one(baked, variant):
    project = baked(variant)
    assert project.files() == expected_files(project)


@ALL_VARIANTS
def test_structured_files_parse(baked, variant):
    project = baked(variant)
    for name in project.files():
        text = project.read(name)
        if name.endswith((".yaml", ".yml")):
            yaml.safe_load(text)
        elif name.endswith(".json"):
            json.loads(text)
        elif name.endswith(".toml"):
            tomllib.loads(text)
        elif name.endswith(".cfg"):
            configparser.ConfigParser(interpolation=None).read_string(text)
    pools = json.loads(project.read("config/pools.json"))
    assert "default_pool" in pools and all(pool["slots"] > 0 for pool in pools.values())


@ALL_VARIANTS
def test_python_is_ruff_clean_and_formatted(baked, variant):
    project = baked(variant)
    run([str(TOOLS_BIN / "ruff"), "check", "--no-cache", "."], cwd=project.path)
    run([str(TOOLS_BIN / "ruff"), "format", "--no-cache", "--check", "."], cwd=project.path)


@EXECUTOR_VARIANTS
def test_airflow_cfg_matches_the_executor(baked, variant):
    project = baked(variant)
    core_executor, sections, _ = EXECUTORS[project.answer("executor")]
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(project.read("config/airflow.cfg"))
    assert cfg["core"]["executor"] == core_executor
    all_executor_sections = {"celery", "kubernetes_executor"}
    assert set(cfg.sections()) & all_executor_sections == sections
    # LocalExecutor forks its workers on the scheduler's machine, so it gets fewer slots.
    expected_parallelism = "8" if core_executor == "LocalExecutor" else "64"
    assert cfg["core"]["parallelism"] == expected_parallelism


@EXECUTOR_VARIANTS
def test_requirements_install_the_executors_providers(baked, variant):
    project = baked(variant)
    _, _, providers = EXECUTORS[project.answer("executor")]
    all_executor_providers = {"apache-airflow-providers-celery", "apache-airflow-providers-cncf-kubernetes"}
    names = requirement_names(project.read("requirements.txt"))
    assert names & all_executor_providers == providers
    assert {"apache-airflow", "apache-airflow-providers-standard", "apache-airflow-providers-postgres"} <= names
    assert "-c constraints.txt" in project.read("requirements.txt").splitlines()


def test_constraints_pin_every_requirement_to_one_version(baked):
    project = baked("hybrid")
    pins = {}
    for line in project.read("constraints.txt").splitlines():
        if line and not line.startswith((" ", "#")):
            requirement = line.split(";", 1)[0].strip()
            name, _, version = requirement.partition("==")
            assert version, f"not an exact pin: {line}"
            pins.setdefault(name.lower(), set()).add(version)
    wanted = requirement_names(project.read("requirements.txt")) | requirement_names(
        project.read("requirements-dev.txt")
    )
    assert wanted <= set(pins), f"not pinned: {wanted - set(pins)}"
    assert pins["apache-airflow"] == {"3.3.2"}
    assert all(version < "5.7" for version in pins["celery"]), "celery 5.7 breaks CeleryExecutor on Airflow 3.3.2"
    # The template lints baked projects with its own ruff: it must be the project's version.
    template_ruff = re.search(r"^ruff==(\S+)", (TEMPLATE_DIR / "requirements-dev.txt").read_text(), re.M)[1]
    assert pins["ruff"] == {template_ruff}


@pytest.mark.parametrize("variant", ["local", "python311", "python313"])
def test_python_version_reaches_every_tool(baked, variant):
    project = baked(variant)
    version = project.answer("python_version")
    pyproject = tomllib.loads(project.read("pyproject.toml"))
    assert pyproject["project"]["requires-python"] == f">={version}"
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")
    assert f"PYTHON_VERSION := {version}" in project.read("Makefile")


@pytest.mark.parametrize("variant", ["celery", "no-examples"])
def test_example_switch_controls_dags(baked, variant):
    project = baked(variant)
    dag_files = {name for name in project.files() if name.startswith("dags/") and name.endswith(".py")}
    assert bool(dag_files) is project.answer("include_examples")


def test_same_answers_give_byte_identical_tracked_files(tmp_path):
    first = BakedProject(bake(tmp_path / "first", **VARIANTS["hybrid"]), VARIANTS["hybrid"])
    second = BakedProject(bake(tmp_path / "second", **VARIANTS["hybrid"]), VARIANTS["hybrid"])
    tracked = first.files() - SECRET_FILES
    assert tracked == second.files() - SECRET_FILES
    assert [name for name in sorted(tracked) if first.read(name) != second.read(name)] == []
    assert read_env_file(first.path) != read_env_file(second.path), "each bake must get fresh secrets"
    first_admin, second_admin = (read_env_file(bake.path, ".env.auth") for bake in (first, second))
    assert first_admin["AIRFLOW_ADMIN_PASSWORD"] != second_admin["AIRFLOW_ADMIN_PASSWORD"]


@EXECUTOR_VARIANTS
def test_env_file_holds_fresh_secrets_that_nothing_tracked_contains(baked, variant):
    project = baked(variant)
    env = read_env_file(project.path)
    assert set(env) == set(SECRET_NAMES)
    assert all(len(value) >= 40 for value in env.values())
    assert stat.S_IMODE((project.path / ".env").stat().st_mode) == 0o600
    for name in project.files() - {".env"}:
        text = project.read(name)
        assert not any(secret in text for secret in env.values()), f"a secret leaked into {name}"
    assert set(SECRET_NAMES) <= set(re.findall(r"^(\w+)=", project.read(".env.example"), re.M))


def test_env_file_is_git_ignored(baked, tmp_path):
    project = baked("local").copy_to(tmp_path)
    generated = project.files()
    run(["git", "init", "--quiet"], cwd=project.path)
    run(["git", "add", "--all"], cwd=project.path)
    tracked = set(run(["git", "ls-files"], cwd=project.path).stdout.split())
    assert not tracked & SECRET_FILES
    assert tracked == generated - SECRET_FILES
    # Nor do they reach the image's build context.
    assert SECRET_FILES <= set(project.read(".dockerignore").splitlines())


@pytest.mark.parametrize("variant", ["local", "gcp-secrets"])  # FAB and Keycloak
def test_auth_secrets_are_fresh_owner_only_and_in_no_tracked_file(baked, variant):
    project = baked(variant)
    assert stat.S_IMODE((project.path / ".env.auth").stat().st_mode) == 0o600
    auth = read_env_file(project.path, ".env.auth")
    if project.answer("auth_manager") == "fab":
        assert set(auth) == {"AIRFLOW_ADMIN_USERNAME", "AIRFLOW_ADMIN_EMAIL", "AIRFLOW_ADMIN_PASSWORD"}
        assert len(auth["AIRFLOW_ADMIN_PASSWORD"]) >= 32
        assert auth["AIRFLOW_ADMIN_EMAIL"] == project.answer("contact_email")
        for name in project.files() - SECRET_FILES:
            assert auth["AIRFLOW_ADMIN_PASSWORD"] not in project.read(name), f"the admin password leaked into {name}"
    else:
        # Keycloak issues the client secret: nothing to generate, and nothing set by default.
        assert auth == {}
        assert "# AIRFLOW__KEYCLOAK_AUTH_MANAGER__CLIENT_SECRET=" in project.read(".env.auth")


@pytest.mark.parametrize("variant", ["kubernetes", "gcp-secrets"])  # FAB and Keycloak
def test_the_chosen_auth_manager_reaches_cfg_requirements_compose_and_helm(baked, variant):
    project = baked(variant)
    chosen = project.answer("auth_manager")
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(project.read("config/airflow.cfg"))
    assert cfg["core"]["auth_manager"] == AUTH_CLASSES[chosen]
    providers = {"fab": "apache-airflow-providers-fab", "keycloak": "apache-airflow-providers-keycloak"}
    assert requirement_names(project.read("requirements.txt")) & set(providers.values()) == {providers[chosen]}
    assert ("fab" in cfg) is (chosen == "fab") and ("keycloak_auth_manager" in cfg) is (chosen == "keycloak")
    # make run alone swaps in SimpleAuthManager, for a laptop.
    assert "AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple" in project.read("Makefile")
    values = yaml.safe_load(project.read("deploy/helm/values.yaml"))
    assert values["apiServer"]["replicas"] >= 2
    assert values["webserver"]["defaultUser"]["enabled"] is (chosen == "fab")
    if chosen == "fab":
        job = values["createUserJob"]
        assert job["args"][-1] == "exec python /opt/airflow/scripts/init_access.py"
        assert {env["name"] for env in job["env"]} == {
            f"AIRFLOW_ADMIN_{name}_FILE" for name in ("USERNAME", "EMAIL", "PASSWORD")
        }
        assert job["extraVolumes"][0]["secret"]["secretName"] == "airflow-admin"
    else:
        env = {item["name"]: item["value"] for item in values["apiServer"]["env"]}
        assert env["AIRFLOW__KEYCLOAK_AUTH_MANAGER__CLIENT_SECRET_CMD"].startswith("cat /opt/airflow/secrets/keycloak/")
        assert values["apiServer"]["extraVolumes"][0]["secret"]["secretName"] == "airflow-keycloak"


def test_fernet_key_is_a_valid_fernet_key(baked):
    import base64

    key = read_env_file(baked("local").path)["AIRFLOW__CORE__FERNET_KEY"]
    assert len(base64.urlsafe_b64decode(key)) == 32


def test_unknown_override_keys_are_refused(tmp_path):
    with pytest.raises(KeyError, match="executer"):
        bake(tmp_path, executer="CeleryExecutor")


# deploy_target -> the DAG bundle class production reads it with
BUNDLE_CLASSES = {
    "s3": "airflow.providers.amazon.aws.bundles.s3.S3DagBundle",
    "gcs": "airflow.providers.google.cloud.bundles.gcs.GCSDagBundle",
    "volume": "airflow.dag_processing.bundles.local.LocalDagBundle",
    "git_bundle": "airflow.providers.git.bundles.git.GitDagBundle",
}


def bundle_list(value: str) -> list[tuple[str, str]]:
    return [(bundle["name"], bundle["classpath"]) for bundle in json.loads(value)]


@EXECUTOR_VARIANTS  # between them, every deploy_target
def test_deploy_script_and_bundle_config_follow_the_deploy_target(baked, variant):
    project = baked(variant)
    target = project.answer("deploy_target")
    # --help needs neither Airflow, nor a cloud SDK, nor plugins/ on the path.
    help_text = run([str(TOOLS_BIN / "python"), "-m", "deploy", "--help"], cwd=project.path).stdout
    assert f"(default: {target})" in help_text and "DEPLOY_TARGET_URI" in help_text and "--dry-run" in help_text
    production = [(project.slug, BUNDLE_CLASSES[target])]
    prefix = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST="
    documented = [line for line in project.read("docs/deploying.md").splitlines() if line.startswith(prefix)]
    assert [bundle_list(line.removeprefix(prefix).strip("'")) for line in documented] == [production]
    if project.answer("executor") in ("KubernetesExecutor", "CeleryKubernetesExecutor"):
        config_map = yaml.safe_load(project.read("deploy/helm/values.yaml"))["extraConfigMaps"]["airflow-runtime-env"]
        assert bundle_list(yaml.safe_load(config_map["data"])[prefix.rstrip("=")]) == production
    # Compose reads the image's dags/, under the production bundle's name.
    compose = yaml.safe_load(project.read("docker-compose.yaml"))["x-airflow-common"]["environment"]
    assert bundle_list(compose[prefix.rstrip("=")]) == [(project.slug, BUNDLE_CLASSES["volume"])]


# The tasks the README teaches, in its order: the "five common tasks".
README_TASKS = [
    "Adding a DAG",
    "Adding a connection",
    "Changing a pool",
    "Deploying DAGs",
    "Updating from the template",
]
README_MAX_LINES = 220
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def markdown_sections(text: str, level: str) -> list[str]:
    """The headings of one level ("##", "###"), in order, without their marks."""
    return [line.removeprefix(level + " ") for line in text.splitlines() if line.startswith(level + " ")]


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub and GitLab give a page's headings: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # a "# comment" in a code block is no heading
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def guide_pages(project: BakedProject) -> list[str]:
    """README.md, docs/ and dags/README.md: the pages that link each other and the project's files."""
    return sorted(name for name in project.files() if name.endswith(".md") and not name.startswith("tests/"))


@ALL_VARIANTS
def test_readme_opens_with_make_run_and_make_test(baked, variant):
    project = baked(variant)
    readme = project.read("README.md")
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in first_block.splitlines()] == [["make", "run"], ["make", "test"]]
    assert re.search(r"^run:", project.read("Makefile"), re.M) and re.search(r"^test:", project.read("Makefile"), re.M)


@ALL_VARIANTS
def test_readme_is_a_short_guide_with_the_five_tasks(baked, variant):
    project = baked(variant)
    readme = project.read("README.md")
    assert len(readme.splitlines()) <= README_MAX_LINES, "detail belongs in docs/, linked from the README"
    tasks = readme.split("\n## Common tasks\n", 1)[1].split("\n## ", 1)[0]
    assert markdown_sections(tasks, "###") == README_TASKS
    for task in README_TASKS:
        recipe = tasks.split(f"### {task}\n", 1)[1].split("\n### ", 1)[0]
        assert "make " in recipe and MARKDOWN_LINK.search(recipe), f"{task}: the commands, and a link to the detail"


@ALL_VARIANTS
def test_readme_describes_every_top_level_folder_and_who_owns_it(baked, variant):
    project = baked(variant)
    readme = project.read("README.md")
    where = readme.split("\n## What lives where\n", 1)[1].split("\n## ", 1)[0]
    folders = {path.name + "/" for path in project.path.iterdir() if path.is_dir() and not path.name.startswith(".")}
    described = {heading.strip("`") for heading in markdown_sections(where, "###")} - {"Top-level files"}
    assert described == folders
    for folder in folders:
        paragraph = where.split(f"### `{folder}`\n", 1)[1].split("\n### ", 1)[0]
        assert re.search(r"\*\*(yours|shared|the template's)\.?\*\*", paragraph, re.I), f"{folder}: who owns it"
    others = {path.name for path in project.path.iterdir() if path.name + "/" not in folders} - {"README.md"}
    assert sorted(name for name in others if f"`{name}" not in where) == [], "every top-level file is described"


@ALL_VARIANTS
def test_every_relative_link_in_the_guide_resolves(baked, variant):
    # Options make files and sections come and go: every variant, anchors included.
    project = baked(variant)
    broken = []
    for page in guide_pages(project):
        for target in MARKDOWN_LINK.findall(project.read(page)):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            resolved = ((project.path / page).parent / path).resolve() if path else project.path / page
            if not resolved.exists() or not resolved.is_relative_to(project.path.resolve()):
                broken.append(f"{page}: {target}")
            elif anchor and anchor not in heading_anchors(resolved.read_text()):
                broken.append(f"{page}: {target} (no such heading)")
    assert broken == []


def layout_entries(text: str) -> set[str]:
    """The paths docs/layout.md describes: each section's folder joined to the names in its table."""
    entries, folder = set(), None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line.removeprefix("## ")
            folder = heading.strip("`") if heading.startswith("`") else ""
        elif folder is not None and (name := re.match(r"^\| `([^`]+)` \|", line)):
            entries.add(folder + name[1])
    return entries


def described_by(path: str, entry: str) -> bool:
    return path.startswith(entry) if entry.endswith("/") else fnmatch.fnmatchcase(path, entry)


@ALL_VARIANTS
def test_layout_page_describes_exactly_the_generated_files(baked, variant):
    project = baked(variant)
    entries = layout_entries(project.read("docs/layout.md"))
    files = project.files()
    assert sorted(name for name in files if not any(described_by(name, entry) for entry in entries)) == []
    assert sorted(entry for entry in entries if not any(described_by(name, entry) for name in files)) == []


def test_template_repository_itself_is_ruff_clean():
    # `make lint` at the template root: hooks, tests, scripts and benchmarks.
    run([str(TOOLS_BIN / "ruff"), "check", "--no-cache", "."], cwd=TEMPLATE_DIR)
    run([str(TOOLS_BIN / "ruff"), "format", "--no-cache", "--check", "."], cwd=TEMPLATE_DIR)
    run([str(TOOLS_BIN / "shellcheck"), ".ci/run"], cwd=TEMPLATE_DIR)


def test_readme_options_table_lists_every_prompt_with_its_default():
    # Derived from cookiecutter.json, so a new prompt without a row in the README fails here.
    options = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    prompts = {name: value for name, value in options.items() if not name.startswith("_")}
    readme = (TEMPLATE_DIR / "README.md").read_text()
    table = readme.split("## Options", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", table, flags=re.MULTILINE))
    assert list(rows) == list(prompts), "the README's options table, in cookiecutter.json's order"
    for name, default in prompts.items():
        if isinstance(default, list):
            assert rows[name].strip() == default[0], name
        elif isinstance(default, bool):
            assert rows[name].strip() == ("yes" if default else "no"), name


# The only module of plugins/ the template fills in; everything else is plain Python.
SETTINGS_MODULE = "plugins/{{cookiecutter.project_slug}}/project_settings.py"


def jinja_in_logic(text: str) -> list[str]:
    """Jinja other than the package name and {% raw %} blocks (Airflow's own templates, escaped)."""
    text = re.sub(r"{% raw %}.*?{% endraw %}", "", text, flags=re.S)
    tags = re.findall(r"{%.*?%}|{{.*?}}|{#.*?#}", text, flags=re.S)
    return [tag for tag in tags if tag != "{{ cookiecutter.project_slug }}"]


def test_plugin_and_test_code_is_plain_python_but_the_settings_module():
    project = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
    sources = sorted(
        path.relative_to(project).as_posix()
        for folder in ("plugins", "tests")
        for path in (project / folder).rglob("*.py")
    )
    # Files copied without rendering hold Airflow's own braces (fixtures, templates), not Jinja.
    verbatim = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())["_copy_without_render"]
    sources = [name for name in sources if not any(fnmatch.fnmatch(name, f"{glob}*") for glob in verbatim)]
    found = {name: tags for name in sources if (tags := jinja_in_logic((project / name).read_text()))}
    assert set(found) == {SETTINGS_MODULE}, found
