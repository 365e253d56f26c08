"""Render tier: the generated Dockerfile and docker-compose.yaml, checked by the real tools.

No Docker engine runs here, and none is needed: check-jsonschema validates the compose file
against the Compose Specification, Docker Compose itself resolves it (`docker-compose config`
parses, merges the YAML anchors and reads .env without an engine), and hadolint lints the
Dockerfile. Assertions read the model Compose resolved, which is what `docker compose up` runs.
"""

from __future__ import annotations

import configparser
import json
import os
import re

import pytest
import yaml
from helpers import OPTIONS, TOOLS_BIN, BakedProject, read_env_file, run

EXECUTOR_VARIANTS = pytest.mark.parametrize("variant", ["local", "celery", "kubernetes", "hybrid"])
PYTHON_VARIANTS = pytest.mark.parametrize("variant", ["local", "python311", "python313"])

AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer"}
CELERY_AIRFLOW_SERVICES = {"worker", "flower"}
SECRET_NAMES = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")
# Proves Compose resolves the file on its own: any attempt to reach an engine would fail.
NO_ENGINE = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def configured_executors(project: BakedProject) -> list[str]:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(project.read("config/airflow.cfg"))
    return cfg["core"]["executor"].split(",")


def uses_celery(project: BakedProject) -> bool:
    return "CeleryExecutor" in configured_executors(project)


def compose_config(project: BakedProject, *args: str, check: bool = True):
    return run([str(TOOLS_BIN / "docker-compose"), "config", *args], cwd=project.path, env=NO_ENGINE, check=check)


def resolved_services(project: BakedProject) -> dict[str, dict]:
    return json.loads(compose_config(project, "--format", "json").stdout)["services"]


def airflow_services(services: dict[str, dict]) -> dict[str, dict]:
    return {name: service for name, service in services.items() if name in AIRFLOW_SERVICES | CELERY_AIRFLOW_SERVICES}


def dockerfile_instructions(project: BakedProject) -> list[tuple[str, str]]:
    text = project.read("Dockerfile").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(maxsplit=1)) for line in lines if line and not line.startswith("#")]


def copy_destinations(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """Where each COPY source lands in the image."""
    destinations = {}
    for instruction, args in instructions:
        if instruction == "COPY":
            *sources, destination = [arg for arg in args.split() if not arg.startswith("--")]
            destinations.update(dict.fromkeys(sources, destination))
    return destinations


@EXECUTOR_VARIANTS
def test_compose_file_matches_the_compose_specification(baked, variant):
    project = baked(variant)
    run(
        [str(TOOLS_BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yaml"],
        cwd=project.path,
    )


@EXECUTOR_VARIANTS
def test_docker_compose_resolves_the_file_and_needs_the_env_file(baked, variant, tmp_path):
    project = baked(variant)
    compose_config(project, "--quiet")
    without_env = project.copy_to(tmp_path)
    (without_env.path / ".env").unlink()
    result = compose_config(without_env, "--quiet", check=False)
    assert result.returncode != 0 and ".env" in result.stderr


@EXECUTOR_VARIANTS
def test_services_match_the_executor(baked, variant):
    project = baked(variant)
    expected = AIRFLOW_SERVICES | {"postgres"}
    if uses_celery(project):
        expected |= CELERY_AIRFLOW_SERVICES | {"redis"}
    if project.answer("metrics") == "statsd":
        expected |= {"statsd-exporter"}
    if project.answer("include_examples"):
        expected |= {"stand-in-apis", "warehouse"}
    assert set(resolved_services(project)) == expected


@EXECUTOR_VARIANTS
def test_every_airflow_service_runs_the_project_image_with_one_environment(baked, variant):
    project = baked(variant)
    services = airflow_services(resolved_services(project))
    for service in services.values():
        assert service["image"] == f"{project.slug}:local"
        assert service["build"]["context"] == str(project.path)
        assert service["build"]["dockerfile"] == "Dockerfile"
    environments = {name: service["environment"] for name, service in services.items()}
    # The auth manager's own secrets reach one container only (test below).
    auth = read_env_file(project.path, ".env.auth")
    airflow_settings = {
        name: {key: value for key, value in env.items() if key.startswith("AIRFLOW") and key not in auth}
        for name, env in environments.items()
    }
    shared = airflow_settings["api-server"]
    assert all(settings == shared for settings in airflow_settings.values()), "every component must agree"
    assert shared["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "@postgres/" in shared["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert shared["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
    celery_settings = {key for key in shared if key.startswith("AIRFLOW__CELERY__")}
    if uses_celery(project):
        assert shared["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
        assert "@postgres/" in shared["AIRFLOW__CELERY__RESULT_BACKEND"]
    else:
        assert not celery_settings


@EXECUTOR_VARIANTS
def test_links_point_at_the_published_api_server(baked, variant):
    # Alert "Log" links are built from [api] base_url; unset, they point at the default instead.
    services = resolved_services(baked(variant))
    published = {(port["host_ip"], port["published"]) for port in services["api-server"]["ports"]}
    assert published == {("127.0.0.1", "8080")}
    for name, service in airflow_services(services).items():
        assert service["environment"]["AIRFLOW__API__BASE_URL"] == "http://localhost:8080", name


@EXECUTOR_VARIANTS
def test_the_worker_health_check_uses_the_remote_control_airflow_cfg_keeps_on(baked, variant):
    project = baked(variant)
    services = resolved_services(project)
    if not uses_celery(project):
        assert "worker" not in services
        return
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])
    # Production (the Helm chart's liveness probe) pings the same way: compose overrides nothing.
    assert "AIRFLOW__CELERY__WORKER_ENABLE_REMOTE_CONTROL" not in services["worker"]["environment"]
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(project.read("config/airflow.cfg"))
    assert cfg.getboolean("celery", "worker_enable_remote_control")


@EXECUTOR_VARIANTS
def test_large_xcoms_go_to_a_volume_every_airflow_service_mounts(baked, variant):
    project = baked(variant)
    for name, service in airflow_services(resolved_services(project)).items():
        xcom_path = service["environment"]["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"]
        assert xcom_path.startswith("file:///"), name
        volumes = {volume["target"]: volume["type"] for volume in service["volumes"]}
        assert volumes.get(xcom_path.removeprefix("file://").rstrip("/")) == "volume", name


# The one container that reads .env.auth, per auth manager: FAB's init job creates the first
# admin; Keycloak's client secret is needed only where sign-ins are handled.
AUTH_READER = {"fab": "airflow-init", "keycloak": "api-server"}


@pytest.mark.parametrize("variant", ["local", "celery", "kubernetes", "hybrid", "gcp-secrets"])
def test_secrets_come_only_from_the_env_file(baked, variant):
    project = baked(variant)
    secrets = read_env_file(project.path)
    raw = yaml.safe_load(project.read("docker-compose.yaml"))["services"]
    for name in airflow_services(raw):
        expected = ["config/airflow.overrides.env", ".env"]
        if name == AUTH_READER[project.answer("auth_manager")]:
            expected.append(".env.auth")
        assert raw[name]["env_file"] == expected, name
        assert not set(SECRET_NAMES) & set(raw[name].get("environment", {})), f"{name} sets a secret inline"
    for name, service in airflow_services(resolved_services(project)).items():
        assert {key: service["environment"][key] for key in SECRET_NAMES} == secrets, name
    assert not any(value in project.read("docker-compose.yaml") for value in secrets.values())


@pytest.mark.parametrize("variant", ["local", "celery", "gcp-secrets"])  # FAB, FAB with workers, Keycloak
def test_auth_secrets_reach_only_the_container_that_needs_them(baked, variant):
    project = baked(variant)
    auth = read_env_file(project.path, ".env.auth")
    services = airflow_services(resolved_services(project))
    reader = AUTH_READER[project.answer("auth_manager")]
    for name, service in services.items():
        seen = {key: service["environment"][key] for key in auth if key in service["environment"]}
        assert seen == (auth if name == reader else {}), name
    if project.answer("auth_manager") == "fab":
        assert {"AIRFLOW_ADMIN_USERNAME", "AIRFLOW_ADMIN_EMAIL", "AIRFLOW_ADMIN_PASSWORD"} <= set(auth)
        if uses_celery(project):
            assert "AIRFLOW_ADMIN_PASSWORD" not in services["worker"]["environment"]
    # No container signs in with SimpleAuthManager: every one reads the cfg's production choice.
    assert not any("AIRFLOW__CORE__AUTH_MANAGER" in service["environment"] for service in services.values())
    header = project.read("docker-compose.yaml").split("\nx-", 1)[0]
    assert "simple_auth_manager" not in header and ".env.auth" in header


@EXECUTOR_VARIANTS
def test_services_start_in_order(baked, variant):
    project = baked(variant)
    services = resolved_services(project)

    def conditions(name: str) -> dict[str, str]:
        return {dependency: spec["condition"] for dependency, spec in services[name].get("depends_on", {}).items()}

    ready = {"postgres": "service_healthy", "airflow-init": "service_completed_successfully"}
    if uses_celery(project):
        ready["redis"] = "service_healthy"
    stand_ins = {"warehouse": "service_healthy"} if project.answer("include_examples") else {}
    assert conditions("airflow-init") == {"postgres": "service_healthy", **stand_ins}
    for name in airflow_services(services).keys() - {"airflow-init"}:
        assert ready.items() <= conditions(name).items(), name
    # Whatever runs tasks starts after the api-server they report to, so compose stops it first.
    runs_tasks = {"worker"} if uses_celery(project) else set()
    if configured_executors(project) != ["CeleryExecutor"]:
        runs_tasks.add("scheduler")  # LocalExecutor, or LocalExecutor standing in for Kubernetes
    for name in runs_tasks:
        assert conditions(name).get("api-server") == "service_healthy", f"{name}: tasks report to the Execution API"
        # The stop signal reaches the process alone (not each task's), and running tasks get 30 s.
        assert services[name]["environment"].get("DUMB_INIT_SETSID") == "0", name
        assert services[name].get("stop_grace_period") == "30s", name
    if "scheduler" not in runs_tasks:
        assert "api-server" not in conditions("scheduler"), "a scheduler that runs no task need not wait"


@EXECUTOR_VARIANTS
def test_every_long_running_service_has_a_healthcheck(baked, variant):
    project = baked(variant)
    services = resolved_services(project)
    for name, service in services.items():
        if name == "airflow-init":
            assert service.get("restart", "no") == "no", "a one-off job must not restart"
            continue
        assert service["restart"] == "unless-stopped", name
        healthcheck = service.get("healthcheck", {})
        assert healthcheck.get("test") and not healthcheck.get("disable"), f"{name} has no healthcheck"
    assert "http://localhost:8080/api/v2/version" in services["api-server"]["healthcheck"]["test"]
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


@EXECUTOR_VARIANTS
def test_init_migrates_the_database_then_imports_the_pools(baked, variant):
    project = baked(variant)
    command = " ".join(resolved_services(project)["airflow-init"]["command"])
    imported = re.search(r"airflow db migrate && airflow pools import (\S+)", command)
    assert imported, command
    destinations = copy_destinations(dockerfile_instructions(project))
    assert imported[1] == destinations["config/"] + "pools.json"
    # Then FAB's first admin and roles as code, from the script the image carries.
    assert "pools.json && python /opt/airflow/scripts/init_access.py" in command, command
    assert destinations["scripts/init_access.py"] + "init_access.py" == "/opt/airflow/scripts/init_access.py"


@EXECUTOR_VARIANTS
def test_kubernetes_executor_is_stood_in_for_under_its_own_name(baked, variant):
    # KubernetesExecutor.start() needs cluster credentials, so compose swaps in LocalExecutor
    # under the same name: DAGs that name an executor must still find it, or fail to parse.
    project = baked(variant)
    environment = resolved_services(project)["scheduler"]["environment"]
    configured = configured_executors(project)
    uses_kubernetes = "KubernetesExecutor" in configured
    assert ("AIRFLOW__CORE__EXECUTOR" in environment) is uses_kubernetes
    entries = environment.get("AIRFLOW__CORE__EXECUTOR", ",".join(configured)).split(",")
    backing = dict(entry.split(":") if ":" in entry else (entry, entry) for entry in entries)
    assert list(backing) == configured
    assert "KubernetesExecutor" not in backing.values()
    if uses_kubernetes:
        assert backing["KubernetesExecutor"] == "LocalExecutor"
        # LocalExecutor forks [core] parallelism workers at start: never the cluster-sized value.
        assert int(environment["AIRFLOW__CORE__PARALLELISM"]) <= 16
        assert "LocalExecutor stands in" in project.read("docker-compose.yaml").split("\nx-", 1)[0]


@PYTHON_VARIANTS
def test_dockerfile_extends_the_official_image_for_the_pinned_airflow_and_python(baked, variant):
    project = baked(variant)
    instructions = dockerfile_instructions(project)
    pinned = re.search(r"^apache-airflow==(\S+)$", project.read("requirements.txt"), re.M)[1]
    assert pinned == OPTIONS["__airflow_version"] == "3.3.2"
    assert instructions[0] == ("FROM", f"apache/airflow:{pinned}-python{project.answer('python_version')}")


@EXECUTOR_VARIANTS
def test_dockerfile_installs_pinned_packages_before_copying_code(baked, variant):
    project = baked(variant)
    instructions = dockerfile_instructions(project)
    steps = [instruction for instruction, _ in instructions]
    installs = [args for instruction, args in instructions if instruction == "RUN" and "pip install" in args]
    assert len(installs) == 1
    install = installs[0].split()
    assert {"--no-cache-dir", "requirements.txt", "constraints.txt"} <= set(install)
    assert install[install.index("constraints.txt") - 1] in ("-c", "--constraint")
    install_step = instructions.index(("RUN", installs[0]))
    users = [args for instruction, args in instructions[:install_step] if instruction == "USER"]
    assert users and users[-1] not in ("root", "0"), "packages install as the airflow user"

    destinations = copy_destinations(instructions)
    assert {"requirements.txt", "constraints.txt", "config/", "plugins/", "dags/"} <= destinations.keys()
    copies = [(index, args) for index, (instruction, args) in enumerate(instructions) if instruction == "COPY"]
    for index, args in copies:
        installs_first = any(name in args.split() for name in ("requirements.txt", "constraints.txt"))
        assert (index < install_step) is installs_first, f"COPY {args}: a code change must not reinstall packages"
    assert steps.count("FROM") == 1

    environment = dict(args.split("=", 1) for instruction, args in instructions if instruction == "ENV")
    assert environment["AIRFLOW_CONFIG"] == destinations["config/"] + "airflow.cfg"


@EXECUTOR_VARIANTS
def test_no_secret_reaches_the_image(baked, variant):
    project = baked(variant)
    dockerfile = project.read("Dockerfile")
    assert not any(name in dockerfile for name in SECRET_NAMES)
    assert not any(value in dockerfile for value in read_env_file(project.path).values())
    assert ".env" in project.read(".dockerignore").splitlines()


@PYTHON_VARIANTS
def test_dockerfile_passes_hadolint(baked, variant):
    project = baked(variant)
    run([str(TOOLS_BIN / "hadolint"), "--no-color", "Dockerfile"], cwd=project.path)
