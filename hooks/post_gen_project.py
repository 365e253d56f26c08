"""Finish a generated project: drop files the answers don't need, write secrets to .env.

Cruft runs this again on every `cruft update`, in a temporary folder and without
`_repo_dir`, so everything here is local, offline and safe to run twice. Tracked files
never hold a secret: those go only to the git-ignored .env, which is never overwritten.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import sys
from pathlib import Path


def is_true(answers: dict, key: str) -> bool:
    # Private derived values arrive rendered as the strings "True" and "False".
    return str(answers[key]) == "True"


def unneeded_paths(answers: dict) -> list[str]:
    """Project-relative paths the chosen options leave unused: the one list of optional files."""
    examples = answers["include_examples"]
    keep_when = {
        "dags/example_safe_taskflow.py": examples,
        "dags/example_kubernetes_offload.py": examples and is_true(answers, "__is_hybrid"),
        f"plugins/{answers['project_slug']}/sample_orders.py": examples,
        "tests/test_sample_orders.py": examples,
    }
    return [path for path, keep in keep_when.items() if not keep]


def remove_paths(project: Path, paths: list[str]) -> None:
    for relative in paths:
        target = project / relative
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def new_secrets() -> dict[str, str]:
    """Fresh values for .env; the Fernet key has the format cryptography's Fernet.generate_key() makes."""
    return {
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(48),
    }


def write_env_file(project: Path) -> bool:
    """Write .env with fresh secrets unless one exists; returns whether it wrote one."""
    env_file = project / ".env"
    if env_file.exists():
        return False
    lines = ["# Written by the project generator. Git-ignored: never commit it. See .env.example."]
    lines += [f"{name}={value}" for name, value in new_secrets().items()]
    env_file.touch(mode=0o600)
    env_file.write_text("\n".join(lines) + "\n")
    return True


def finish(project: Path, answers: dict) -> None:
    remove_paths(project, unneeded_paths(answers))
    wrote_env = write_env_file(project)
    print(f"\nCreated {answers['project_name']} in {project}")
    if wrote_env:
        print("  .env holds fresh secrets for local runs (git-ignored).")
    print(f"  Next: cd {project.name} && make run    # Airflow on http://localhost:8080")
    print("        make test                         # DAG integrity, policy and config tests")


def main() -> int:
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    finish(Path.cwd(), answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
