"""Point Airflow at this project before anything imports it, share one parsed DagBag, and read its config files.

The DagBag is parsed by {{ cookiecutter.project_slug }}.dag_checks, the same code deploy/validate.py
validates with: as the dag-processor parses, except that parse-time network access and
Variable or Connection look-ups become the file's import error.
"""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.project_slug }} import dag_checks

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = PROJECT_ROOT / "dags"
AIRFLOW_CFG = PROJECT_ROOT / "config" / "airflow.cfg"
POOLS_FILE = PROJECT_ROOT / "config" / "pools.json"
CONFIG_OVERRIDES = PROJECT_ROOT / "config" / "airflow.overrides.env"
HELM_VALUES = PROJECT_ROOT / "deploy" / "helm" / "values.yaml"
# A plain name and a literal value: what make, docker compose and kubectl all read the same way.
OVERRIDE_LINE = re.compile(r"(AIRFLOW__[A-Z0-9_]+)=((?:[^\s\"'$#](?:[^\"'$#]*[^\s\"'$#])?)?)")


def override_lines() -> list[str]:
    """The lines of config/airflow.overrides.env that are neither blank nor comments."""
    lines = CONFIG_OVERRIDES.read_text().splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def config_overrides() -> dict[str, str]:
    """The team's overrides of airflow.cfg, as the environment variables the Makefile exports."""
    return dict(match.groups() for line in override_lines() if (match := OVERRIDE_LINE.fullmatch(line)))


def airflow_cfg() -> configparser.ConfigParser:
    """config/airflow.cfg as written, without the team's overrides."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(AIRFLOW_CFG)
    return parser


def configured_executors() -> list[str]:
    return [name.strip() for name in airflow_cfg()["core"]["executor"].split(",")]


def helm_values() -> dict:
    """deploy/helm/values.yaml, which projects on Kubernetes have."""
    return yaml.safe_load(HELM_VALUES.read_text())


def helm_env_names(values: dict) -> set[str]:
    """Environment variable names the values give Airflow's containers."""
    extra_env = yaml.safe_load(values.get("extraEnv") or "[]")
    config_maps = values.get("extraConfigMaps", {})
    from_config_maps = {name for cm in config_maps.values() for name in yaml.safe_load(cm["data"])}
    return {item["name"] for item in extra_env} | from_config_maps


# The team's overrides apply to the tests as to `make run`; the project settings below still win.
os.environ.update(config_overrides())
# Tests never touch the developer's own Airflow home or database, nor a remote secrets backend.
dag_checks.use_project_config(PROJECT_ROOT)


@pytest.fixture(scope="session")
def dag_bag():
    return dag_checks.parse_dags(DAGS_FOLDER, POOLS_FILE)


@pytest.fixture(autouse=True)
def direct_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests in tests go straight to the local servers, never through a proxy from the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
