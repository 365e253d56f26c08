"""pytest's side of the harness: test tiers, the xdist scheduler, and the session's shared bakes.

The helpers every test imports (bake, run, BakedProject, project_venv...) are in helpers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import VARIANTS, BakedProject, bake
from xdist.scheduler import LoadGroupScheduling

# Every test's tier, decided here and nowhere else: a module's tier, or a test's own where a module
# mixes tiers (keyed by the test function's name, for all its parameters). pyproject.toml describes the tiers.
TIERS = {
    "test_render.py": "fast",
    "test_render_shortcuts.py": "fast",
    "test_template_cache.py": "fast",
    "test_hooks.py": "fast",
    "test_options.py": "fast",
    "test_services.py": "fast",
    "test_run_local.py": "fast",
    "test_compose.py": "fast",
    "test_ci.py": "fast",
    "test_ci.py::test_every_pre_commit_hook_passes_on_the_bake": "project",
    "test_ci.py::test_pre_commit_hooks_fail_on_planted_faults": "project",
    "test_ci.py::test_dagbag_hook_runs_make_test_dags_when_dags_or_plugins_change": "project",
    "test_alert_rules.py": "fast",
    "test_metrics_config.py": "fast",
    "test_statsd_mapping.py": "fast",
    "test_statsd_mapping.py::test_mapping_allow_list_and_airflow_registry_agree": "project",
    "test_otel.py": "fast",
    "test_otel.py::test_opentelemetry_metrics_reach_prometheus_under_the_names_the_rules_use": "project",
    "test_runbooks.py": "fast",
    "test_runbooks.py::test_every_cli_command_the_runbooks_cite_exists": "project",
    "test_cruft_update.py": "fast",
    "test_cruft_update.py::test_project_suite_passes_after_the_update": "project",
    "test_cruft_update.py::test_project_suite_rejects_a_broken_override": "project",
    "test_cluster.py": "fast",
    "test_cluster.py::test_a_misspelt_key_or_a_wrong_type_in_the_values_fails_the_project_suite": "project",
    "test_cluster.py::test_the_charts_liveness_probe_answers_for_a_worker_on_the_baked_config": "runtime",
    "test_cluster.py::test_task_logs_outlive_the_worker_through_the_helm_values_remote_logging": "runtime",
    "test_airflow.py": "project",
    "test_upgrade_check.py": "project",
    "test_first_run.py": "runtime",
    "test_first_run.py::test_demo_bakes_the_default_project_and_runs_a_dag": "project",
    "test_first_run.py::test_generated_makefile_targets_pass": "project",
    "test_access_keycloak.py": "runtime",
    "test_access_keycloak.py::test_the_provider_loads_the_generated_keycloak_settings": "project",
    "test_access_fab.py": "runtime",
    "test_deploy.py": "runtime",
    "test_example_dags.py": "runtime",
    "test_observability_run.py": "runtime",
    "test_runtime.py": "runtime",
}

# Modules whose tests share one module-scoped setup (a deployment, a cruft story, a checked project):
# each runs whole on one xdist worker, so the setup is made once, not once per worker.
ONE_WORKER_MODULES = {
    "test_access_fab.py",
    "test_access_keycloak.py",
    "test_cruft_update.py",
    "test_deploy.py",
    "test_example_dags.py",
    "test_first_run.py",
    "test_runtime.py",
    "test_upgrade_check.py",
}


def tier_of(item: pytest.Item) -> str:
    module = item.path.name
    test = getattr(item, "originalname", item.name)
    tier = TIERS.get(f"{module}::{test}") or TIERS.get(module)
    if tier is None:
        raise pytest.UsageError(f"{item.nodeid}: its module has no tier; add {module!r} to TIERS in tests/conftest.py")
    if tier != "fast" or item.get_closest_marker("airflow") is None:
        return tier
    raise pytest.UsageError(f"{item.nodeid} installs Airflow (marked airflow), so it cannot be in the fast tier")


# First, so that `-m <tier>` selects by the markers added here.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(tier_of(item))
    collected = {item.path.name for item in items}
    names = {f"{item.path.name}::{getattr(item, 'originalname', item.name)}" for item in items}
    stale = [key for key in TIERS if "::" in key and key.split("::")[0] in collected and key not in names]
    if stale:
        raise pytest.UsageError(f"TIERS in tests/conftest.py names tests that do not exist: {stale}")


class OneWorkerPerModule(LoadGroupScheduling):
    """`--dist loadgroup` that also keeps each of ONE_WORKER_MODULES whole on one worker.

    The controller knows tests by their ids only. pytest-xdist 3.8 passes an `xdist_group` mark to it
    by appending "@group" to the id, which pytest 9 no longer lets a plugin change
    (pytest-dev/pytest-xdist#1386), so the marks group nothing; a module's file name in the id still works.
    """

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return module if Path(module).name in ONE_WORKER_MODULES else super()._split_scope(nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> LoadGroupScheduling | None:
    return OneWorkerPerModule(config, log) if config.getvalue("dist") == "loadgroup" else None


@pytest.fixture(scope="session")
def baked(tmp_path_factory):
    """baked(name) bakes a named variant once per session (per xdist worker) and shares it."""
    cache: dict[str, BakedProject] = {}

    def get(name: str) -> BakedProject:
        if name not in cache:
            output = tmp_path_factory.mktemp(f"bake-{name}")
            cache[name] = BakedProject(bake(output, **VARIANTS[name]), VARIANTS[name])
        return cache[name]

    return get
