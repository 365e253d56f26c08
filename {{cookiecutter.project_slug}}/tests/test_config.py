"""config/airflow.cfg and the team's overrides are valid for Airflow 3, load their executors and hold no secrets."""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import AIRFLOW_CFG, CONFIG_OVERRIDES, OVERRIDE_LINE, config_overrides, override_lines

AIRFLOW = [sys.executable, "-m", "airflow"]


def written_options() -> dict[str, set[str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(AIRFLOW_CFG)
    return {section: set(parser.options(section)) for section in parser.sections()}


@pytest.fixture(scope="module")
def known_options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Every option Airflow knows, by section: one `airflow config list` for the tests that need it."""
    # `config list --defaults` also lists whatever AIRFLOW_CONFIG sets, so ask with an empty one.
    scratch = tmp_path_factory.mktemp("empty-config")
    env = {**os.environ, "AIRFLOW_CONFIG": str(scratch / "airflow.cfg"), "AIRFLOW_HOME": str(scratch)}
    listing = subprocess.run(
        [*AIRFLOW, "config", "list", "--defaults"], capture_output=True, text=True, check=True, env=env
    ).stdout
    known: dict[str, set[str]] = {}
    section = None
    for line in listing.splitlines():
        if header := re.fullmatch(r"\[(.+)\]", line):
            section = known.setdefault(header[1], set())
        elif section is not None and (option := re.match(r"# (\w+) = ", line)):
            section.add(option[1])
    return known


def test_config_lint_finds_nothing_moved_or_removed():
    # `config lint` always notes a non-default executor; that note is expected.
    result = subprocess.run(
        [*AIRFLOW, "config", "lint", "--ignore-option", "executor"], capture_output=True, text=True, env=os.environ
    )
    assert "No issues found" in result.stdout, result.stdout + result.stderr


def test_cli_output_is_only_the_answer():
    # Airflow logs warnings on stdout, and with plugins loaded at start every CLI call reads the
    # plugins' .airflowignore: a deprecation warning there would break each `--output json` that
    # a script parses (constraints.txt keeps pathspec below 1 for that reason). OpenTelemetry
    # metrics are off, as the Makefile runs Airflow without a collector: with them on, Airflow
    # logs its collector connection on stdout whatever the plugin setting.
    env = {**os.environ, "AIRFLOW__METRICS__OTEL_ON": "False"}
    result = subprocess.run([*AIRFLOW, "version"], capture_output=True, text=True, env=env, check=True)
    assert re.fullmatch(r"\d+\.\d+\.\d+\n", result.stdout), result.stdout


def test_every_option_is_one_airflow_knows(known_options):
    # Airflow silently ignores an option it does not know, so a typo would go unnoticed.
    unknown = sorted(
        f"[{section}] {option}"
        for section, options in written_options().items()
        for option in options
        if option not in known_options.get(section, set())
    )
    assert not unknown, f"options Airflow does not know: {unknown}"


def test_configured_executors_load():
    from airflow.configuration import conf
    from airflow.executors.executor_loader import ExecutorLoader

    configured = [name.strip() for name in conf.get("core", "executor").split(",")]
    loaded = [type(executor).__name__ for executor in ExecutorLoader.init_executors()]
    assert loaded == configured


# Airflow treats backend_kwargs as sensitive because it may hold credentials; ours may only
# name where secrets live, never how to log in.
CREDENTIAL_WORDS = ("token", "password", "secret_id", "role_id", "key", "credential")


def test_no_secrets_in_config():
    from airflow.configuration import conf

    options = written_options()
    secrets = sorted(
        f"[{section}] {option}"
        for section, names in options.items()
        for option in names
        if (section, option) in conf.sensitive_config_values and (section, option) != ("secrets", "backend_kwargs")
    )
    assert not secrets, f"set these through the environment or a secrets backend instead: {secrets}"
    if "backend_kwargs" in options.get("secrets", set()):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(AIRFLOW_CFG)
        kwargs = json.loads(parser["secrets"]["backend_kwargs"])
        credentials = sorted(name for name in kwargs if any(word in name.lower() for word in CREDENTIAL_WORDS))
        assert not credentials, f"[secrets] backend_kwargs holds credentials: {credentials}"


def environment_name(section: str, option: str) -> str:
    return f"AIRFLOW__{section.replace('.', '_').upper()}__{option.upper()}"


def test_overrides_are_plain_assignments():
    malformed = [line for line in override_lines() if not OVERRIDE_LINE.fullmatch(line)]
    assert not malformed, (
        f"{CONFIG_OVERRIDES.name}: write AIRFLOW__SECTION__KEY=value, without quotes, $, # or spaces around "
        f"the value, which make, docker compose and kubectl would each read differently: {malformed}"
    )


def test_overrides_name_options_airflow_knows_and_applies(known_options):
    from airflow.configuration import conf

    # Airflow silently ignores a variable that names no option, so a typo would go unnoticed.
    options = {
        environment_name(section, option): (section, option)
        for section, names in known_options.items()
        for option in names
    }
    overrides = config_overrides()
    unknown = sorted(set(overrides) - set(options))
    assert not unknown, f"{CONFIG_OVERRIDES.name} names options Airflow does not know: {unknown}"
    ignored = sorted(name for name, value in overrides.items() if conf.get(*options[name]) != value)
    assert not ignored, f"overridden again by the test setup in conftest.py: {ignored}"


def test_overrides_hold_no_secrets():
    from airflow.configuration import conf

    sensitive = {environment_name(section, option) for section, option in conf.sensitive_config_values}
    secrets = sorted(set(config_overrides()) & sensitive)
    assert not secrets, f"{CONFIG_OVERRIDES.name} is committed: set these in .env or a secrets store instead: {secrets}"


def test_no_machine_specific_paths():
    # The same file serves laptops, CI and containers; paths come from AIRFLOW_HOME or env.
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(AIRFLOW_CFG)
    absolute = sorted(
        f"[{section}] {option} = {value}"
        for section in parser.sections()
        for option, value in parser.items(section)
        if re.match(r"(/|~|[A-Za-z]:\\)", value)
    )
    assert not absolute, f"machine-specific paths: {absolute}"


def test_secrets_backend_is_installed_and_configured():
    import importlib

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(AIRFLOW_CFG)
    if not parser.has_option("secrets", "backend"):
        pytest.skip("no secrets backend: Connections and Variables come from the environment and the metadata DB")
    module_name, _, class_name = parser["secrets"]["backend"].rpartition(".")
    backend = getattr(importlib.import_module(module_name), class_name)
    kwargs = json.loads(parser["secrets"]["backend_kwargs"])
    assert kwargs and all(isinstance(value, str) for value in kwargs.values())
    assert backend.__name__ == class_name
