"""Finish a generated project: drop files the answers don't need, write secrets to .env.

Cruft runs this again on every `cruft update`, in a temporary folder and without
`_repo_dir`, so everything here is local, offline and safe to run twice. Tracked files
never hold a secret: those go only to the git-ignored .env, which is never overwritten.

Every bake starts a Python interpreter for this file, so it imports only what it needs:
os.path rather than pathlib, and os.urandom rather than the secrets module (the same source;
together they cost about 9 ms of imports in each bake).
"""

from __future__ import annotations

import base64
import json
import os
import sys


def is_true(answers: dict, key: str) -> bool:
    # Private derived values arrive rendered as the strings "True" and "False".
    return str(answers[key]) == "True"


# The optional files, in one place. Paths are relative to the project; {slug} is the package.
EXAMPLE_FILES = (
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
)
HYBRID_EXAMPLE_FILES = ("dags/example_kubernetes_offload.py",)
# Alert channels: the module that sends to each, and its tests, kept for the chosen ones only.
ALERT_CHANNEL_FILES = {
    "slack": ("plugins/{slug}/slack_alerts.py", "tests/test_slack_alerts.py"),
    "email": ("plugins/{slug}/email_alerts.py", "tests/test_email_alerts.py"),
    "pagerduty": ("plugins/{slug}/pagerduty_alerts.py", "tests/test_pagerduty_alerts.py"),
}
KUBERNETES_FILES = (
    "deploy/helm/values.yaml",
    "deploy/k8s/pod_template.yaml",
    "tests/helm_chart_schema.json",
    "tests/test_helm_values.py",
    "tests/test_task_pods.py",
)
# CI for the chosen provider only.
GITHUB_CI_FILES = (".github/workflows/ci.yml", ".github/workflows/template-update.yml")
GITLAB_CI_FILES = (".gitlab-ci.yml", ".gitlab/template-update.yml")
# Metrics: the statsd_exporter mapping or the OpenTelemetry collector, and alert rules for either.
STATSD_FILES = ("monitoring/statsd_mapping.yaml",)
OTEL_FILES = ("monitoring/otel-collector.yaml",)
ALERT_RULE_FILES = ("monitoring/prometheus/airflow_rules.yaml", "monitoring/prometheus/airflow_rules_test.yaml")
# FAB's roles as code and the init job that applies them; Keycloak keeps roles in its realm.
FAB_FILES = ("config/access.yaml", "scripts/init_access.py", "tests/test_access.py")


def unneeded_paths(answers: dict) -> list[str]:
    """Project-relative paths the chosen options leave unused."""
    unneeded = []
    if not answers["include_examples"]:
        unneeded += EXAMPLE_FILES + HYBRID_EXAMPLE_FILES
    elif not is_true(answers, "__is_hybrid"):
        unneeded += HYBRID_EXAMPLE_FILES
    chosen_channels = {answers["alert_chat"], answers["alert_pager"]}
    for channel, files in ALERT_CHANNEL_FILES.items():
        if channel not in chosen_channels:
            unneeded += files
    if not is_true(answers, "__uses_kubernetes"):
        unneeded += KUBERNETES_FILES
    if answers["ci_provider"] != "github":
        unneeded += GITHUB_CI_FILES
    if answers["ci_provider"] != "gitlab":
        unneeded += GITLAB_CI_FILES
    if answers["metrics"] != "statsd":
        unneeded += STATSD_FILES
    if answers["metrics"] != "otel":
        unneeded += OTEL_FILES
    if answers["metrics"] == "none":
        unneeded += ALERT_RULE_FILES
    if answers["auth_manager"] != "fab":
        unneeded += FAB_FILES
    return [path.format(slug=answers["project_slug"]) for path in unneeded]


def remove_paths(project: str, paths: list[str]) -> None:
    """Delete the files, then any folder they leave empty."""
    for relative in paths:
        target = os.path.join(project, relative)
        if os.path.isfile(target):
            os.remove(target)
        folder = os.path.dirname(target)
        while folder != project and os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
            folder = os.path.dirname(folder)


def token_urlsafe(nbytes: int) -> str:
    """What secrets.token_urlsafe(nbytes) returns: os.urandom bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(os.urandom(nbytes)).rstrip(b"=").decode()


def new_secrets() -> dict[str, str]:
    """Fresh values for .env; the Fernet key has the format cryptography's Fernet.generate_key() makes."""
    return {
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": token_urlsafe(48),
        "AIRFLOW__API__SECRET_KEY": token_urlsafe(48),
    }


def write_secret_file(path: str, lines: list[str]) -> bool:
    """Write an owner-only file unless it exists (it then holds secrets in use); returns whether it wrote it."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as secret_file:
        secret_file.write("\n".join(lines) + "\n")
    return True


def write_env_file(project: str) -> bool:
    """Write .env with fresh secrets unless one exists; returns whether it wrote one."""
    lines = ["# Written by the project generator. Git-ignored: never commit it. See .env.example."]
    lines += [f"{name}={value}" for name, value in new_secrets().items()]
    return write_secret_file(os.path.join(project, ".env"), lines)


def auth_env_lines(answers: dict) -> list[str]:
    """.env.auth: the auth manager's secrets, which docker compose gives only the container that needs them."""
    lines = ["# Written by the project generator. Git-ignored: never commit it. See docs/access.md."]
    if answers["auth_manager"] == "fab":
        lines += [
            "# The first admin, created once by docker compose's airflow-init (scripts/init_access.py).",
            "# Changing the password here later changes nothing: change it in Airflow instead.",
            "AIRFLOW_ADMIN_USERNAME=admin",
            f"AIRFLOW_ADMIN_EMAIL={answers['contact_email']}",
            f"AIRFLOW_ADMIN_PASSWORD={token_urlsafe(24)}",
        ]
    else:
        lines += [
            "# Keycloak issues these: set both before `docker compose up` (docs/access.md).",
            "# AIRFLOW__KEYCLOAK_AUTH_MANAGER__SERVER_URL=https://keycloak.example.com",
            "# AIRFLOW__KEYCLOAK_AUTH_MANAGER__CLIENT_SECRET=",
        ]
    return lines


def write_auth_env_file(project: str, answers: dict) -> bool:
    """Write .env.auth unless one exists; returns whether it wrote one."""
    return write_secret_file(os.path.join(project, ".env.auth"), auth_env_lines(answers))


def finish(project: str | os.PathLike, answers: dict) -> None:
    project = os.fspath(project)
    remove_paths(project, unneeded_paths(answers))
    wrote_env = write_env_file(project)
    wrote_auth = write_auth_env_file(project, answers)
    print(f"\nCreated {answers['project_name']} in {project}")
    if wrote_env:
        print("  .env holds fresh secrets for local runs (git-ignored).")
    if wrote_auth:
        print("  .env.auth holds the auth manager's secrets for docker compose (git-ignored).")
    for line in next_steps(os.path.basename(project)):
        print(line)


def next_steps(folder: str) -> list[str]:
    """The commands to type next, their comments in one column."""
    steps = [
        (f"cd {folder} && make run", "Airflow on http://127.0.0.1:8080; Ctrl-C stops it"),
        ("make test", "DAG integrity, policy and config tests"),
    ]
    width = max(len(command) for command, _ in steps)
    labels = ["  Next: ", " " * len("  Next: ")]
    return [f"{label}{command:<{width}}  # {comment}" for label, (command, comment) in zip(labels, steps, strict=True)]


def main() -> int:
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    finish(os.getcwd(), answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
