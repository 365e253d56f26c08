"""The harness every tier builds on: named bakes, commands, cached project venvs, Airflow's environment.

Plain functions and data, imported by the tests (`from helpers import ...`) and by benchmarks/;
pytest's fixtures and hooks live in conftest.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cookiecutter.main import cookiecutter
from filelock import FileLock

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
TOOLS_BIN = Path(sys.executable).parent
VENV_CACHE = TEMPLATE_DIR / ".cache" / "venvs"
# Programs the tests run with a baked project's own Python, or copy into its dags/.
PROBES = TEMPLATE_DIR / "tests" / "probes"
OPTIONS = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
PUBLIC_OPTIONS = {name for name in OPTIONS if not name.startswith("_")}
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
# Git-ignored files the post-gen hook writes with fresh secrets: two bakes never match there.
SECRET_FILES = {".env", ".env.auth"}
# What a copy of the template leaves out, as a git clone of it would.
NOT_TEMPLATE = shutil.ignore_patterns(".git", ".cache", ".demo", ".pytest_cache", ".ruff_cache", "__pycache__")

# Every process the tests and benchmarks start keeps the bytecode of what it imports, in one folder
# away from the baked projects (whose files the tests list) and the venvs. Where
# PYTHONDONTWRITEBYTECODE is set (this machine sets it), each Airflow process would compile its
# imports from source instead, and `import airflow` takes twice the CPU. Writing bytecode as
# modules are imported costs less than `uv pip install --compile-bytecode`, which compiles every
# file of a venv (the Kubernetes clients' alone are thousands that Airflow never imports).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ["PYTHONPYCACHEPREFIX"] = str(TEMPLATE_DIR / ".cache" / "pycache")

# Named bakes: every executor, and every other option value at least once.
VARIANTS: dict[str, dict] = {
    "local": {"executor": "LocalExecutor"},
    "celery": {"executor": "CeleryExecutor", "deploy_target": "volume", "ci_provider": "gitlab"},
    "kubernetes": {"executor": "KubernetesExecutor", "deploy_target": "git_bundle", "metrics": "otel"},
    "hybrid": {"executor": "CeleryKubernetesExecutor", "deploy_target": "gcs"},
    "no-examples": {"executor": "CeleryExecutor", "include_examples": False, "ci_provider": "none", "metrics": "none"},
    "python311": {"python_version": "3.11"},
    "python313": {"python_version": "3.13"},
    "email-alerts": {"alert_chat": "email", "alert_pager": "none", "secrets_backend": "aws_secrets_manager"},
    "no-alerts": {"alert_chat": "none", "alert_pager": "none", "secrets_backend": "hashicorp_vault"},
    "gcp-secrets": {
        "executor": "KubernetesExecutor",
        "secrets_backend": "gcp_secret_manager",
        "ci_provider": "gitlab",
        "auth_manager": "keycloak",
    },
    # A slug that sorts before "conftest" catches import-order differences in generated tests.
    "analytics-hub": {"project_name": "Analytics Hub", "owner_team": "BI Team"},
}


def check_overrides(overrides: dict) -> None:
    # Cookiecutter silently ignores unknown extra_context keys: a typo would test the defaults.
    unknown = set(overrides) - PUBLIC_OPTIONS
    if unknown:
        raise KeyError(f"not options in cookiecutter.json: {sorted(unknown)}")


def bake(output_dir: Path, **overrides) -> Path:
    check_overrides(overrides)
    return Path(cookiecutter(str(TEMPLATE_DIR), no_input=True, extra_context=overrides, output_dir=str(output_dir)))


def run(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True, timeout: float = 600):
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class BakedProject:
    path: Path
    overrides: dict

    def answer(self, name: str):
        """The value cookiecutter used: the override, else the default (a choice's first entry)."""
        default = OPTIONS[name]
        return self.overrides.get(name, default[0] if isinstance(default, list) else default)

    @property
    def slug(self) -> str:
        return self.path.name

    def files(self) -> set[str]:
        return {str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file()}

    def read(self, relative: str) -> str:
        return (self.path / relative).read_text()

    def copy_to(self, destination: Path) -> BakedProject:
        shutil.copytree(self.path, destination / self.slug, symlinks=True)
        return BakedProject(destination / self.slug, self.overrides)


def python_for(version: str) -> str:
    """The interpreter for a Python version, as uv finds it (PATH, pyenv shims, uv-managed)."""
    return run([str(TOOLS_BIN / "uv"), "python", "find", version], cwd=TEMPLATE_DIR).stdout.strip()


def project_venv(project: BakedProject) -> Path:
    """A venv with the project's own requirements-dev.txt, built once per distinct set and cached.

    Python 3.11 variants install with plain pip, as the project's README promises works; the
    others use uv, which resolves the same pins much faster.
    """
    version = project.answer("python_version")
    installer = "pip" if version == "3.11" else "uv"
    inputs = [project.read(name) for name in ("requirements.txt", "requirements-dev.txt", "constraints.txt")]
    key = hashlib.sha256("\0".join([version, installer, *inputs]).encode()).hexdigest()[:16]
    venv = VENV_CACHE / key
    VENV_CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(venv) + ".lock"):
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            uv = str(TOOLS_BIN / "uv")
            python = str(venv / "bin" / "python")
            if installer == "pip":
                run([python_for(version), "-m", "venv", str(venv)], cwd=project.path)
                install = [python, "-m", "pip", "install", "--quiet", "-r", "requirements-dev.txt"]
            else:
                run([uv, "venv", "--quiet", "--python", python_for(version), str(venv)], cwd=project.path)
                install = [uv, "pip", "install", "--quiet", "--python", python, "-r", "requirements-dev.txt"]
            run(install, cwd=project.path, timeout=1500)
            (venv / ".complete").touch()
    return venv


def last_json_line(stdout: str):
    """A probe's answer: its last line. Airflow may log a warning to stdout before it."""
    return json.loads(stdout.strip().splitlines()[-1])


def read_env_file(project: Path, name: str = ".env") -> dict[str, str]:
    """The variables in one of a baked project's env files: .env, .env.auth, config/airflow.overrides.env."""
    lines = (project / name).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def airflow_env(project: Path, venv: Path, home: Path) -> dict[str, str]:
    """The environment the project's Makefile gives Airflow, with state kept in `home`."""
    return {
        **os.environ,
        **read_env_file(project),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(project / "config" / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / "plugins"),
        # As in the Makefile's local runs: no remote secrets backend, which would need credentials.
        "AIRFLOW__SECRETS__BACKEND": "",
        # As in the Makefile's local runs: SimpleAuthManager, not the production auth manager.
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
    }
