"""What the deploy knows about this project: the one module with values filled in when it was made."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from deploy import DeployError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = PROJECT_ROOT / "dags"
POOLS_FILE = PROJECT_ROOT / "config" / "pools.json"
PACKAGE = "{{ cookiecutter.project_slug }}"
DEFAULT_TARGET = "{{ cookiecutter.deploy_target }}"
# Must equal the "name" of the bundle in [dag_processor] dag_bundle_config_list
# (docs/deploying.md: "The bundle production reads").
DEFAULT_BUNDLE_NAME = "{{ cookiecutter.project_slug }}"


def dag_checks() -> ModuleType:
    """plugins/<package>/dag_checks.py, which tests/conftest.py parses with too.

    Imported only when needed, so `--help` and the targets work without plugins/ on the path.
    """
    try:
        from {{ cookiecutter.project_slug }} import dag_checks
    except ModuleNotFoundError as error:
        if error.name != PACKAGE:
            raise
        raise DeployError(
            f"cannot import {PACKAGE}.dag_checks: run `make deploy`, or put plugins/ on PYTHONPATH "
            "(PYTHONPATH=plugins python -m deploy) from the project root"
        ) from None
    return dag_checks
