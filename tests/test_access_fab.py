"""FAB end to end: the production sign-in of a baked project, on a real Postgres and api-server.

The one-off init job runs as docker compose's airflow-init does (`airflow db migrate`, the pools,
then `python scripts/init_access.py`) with the secrets the post-gen hook wrote to .env and
.env.auth. Then: the admin from the secret gets a token at /auth/token; the team's users get
their roles through config/access.yaml's groups; a Viewer gets 403 when it triggers a DAG; the
deploy, the pool sync and the health CLI run with the least roles docs/access.md names; and a
rerun of the init job changes nothing, not even a password changed in the meantime.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

import pytest
import yaml
from airflow_stack import AirflowStack, http_status
from helpers import PROBES, BakedProject, airflow_env, project_venv, read_env_file, run
from services import free_port, postgres_server

pytestmark = pytest.mark.airflow

FAB_TABLES = (
    "ab_user",
    "ab_role",
    "ab_permission",
    "ab_view_menu",
    "ab_permission_view",
    "ab_permission_view_role",
    "ab_user_role",
    "ab_group",
    "ab_group_role",
    "ab_user_group",
)
# Team members, created as an admin would (`airflow users create`), given roles only by groups.
VIEWER = ("vera", "vera-password-123")
DEPLOYER = ("ci-deploy", "deploy-password-123")
NEW_ADMIN_PASSWORD = "changed-in-airflow-456"
BUNDLE = "volume-dags"


@dataclass
class Deployment:
    project: BakedProject
    stack: AirflowStack
    admin: dict[str, str]  # .env.auth
    init_runs: list[subprocess.CompletedProcess]
    tables_before_rerun: dict
    tables_after_rerun: dict

    def token(self, username: str, password: str) -> str:
        return self.stack.request("POST", "/auth/token", {"username": username, "password": password})["access_token"]

    def as_user(self, username: str, password: str) -> AirflowStack:
        stack = AirflowStack(self.project, self.stack.venv, self.stack.home, self.stack.env, port=self.stack.port)
        stack.token = self.token(username, password)
        return stack

    def tool(self, module: str, username: str, password: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        """Run a tool as the Makefile does, `python -m <module>` from the project root."""
        environ = {
            **os.environ,
            "PYTHONPATH": "plugins",
            "AIRFLOW_API_URL": self.stack.url,
            "AIRFLOW_API_USERNAME": username,
            "AIRFLOW_API_PASSWORD": password,
            **env,
        }
        python = str(self.stack.venv / "bin" / "python")
        result = run([python, "-m", module, *args], self.project.path, environ, check=False)
        assert password not in result.stdout + result.stderr, f"{module} printed a password"
        return result


@pytest.fixture(scope="module")
def deployment(baked, tmp_path_factory) -> Deployment:
    project = baked("local").copy_to(tmp_path_factory.mktemp("fab-project"))
    venv = project_venv(project)
    home = tmp_path_factory.mktemp("fab-airflow")
    volume = home / "volume"
    volume.mkdir()
    admin = read_env_file(project.path, ".env.auth")
    with postgres_server(("airflow",)) as urls:
        port = free_port()
        env = airflow_env(project.path, venv, home)
        # Production's auth manager: config/airflow.cfg's, which only `make run` replaces.
        del env["AIRFLOW__CORE__AUTH_MANAGER"]
        env |= {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"].replace("postgresql://", "postgresql+psycopg2://"),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": f"file://{home}/xcom",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [
                    {
                        "name": BUNDLE,
                        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                        "kwargs": {"path": str(volume)},
                    }
                ]
            ),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        stack = AirflowStack(project, venv, home, env, port=port)
        python = str(venv / "bin" / "python")

        def init_job() -> subprocess.CompletedProcess:
            # What compose's airflow-init gets: .env and .env.auth.
            return run([python, "scripts/init_access.py"], project.path, env | admin)

        # docker compose's airflow-init: migrate, pools, then the first admin and access.yaml.
        stack.airflow("db", "migrate")
        stack.airflow("pools", "import", "config/pools.json")
        runs = [init_job()]
        try:
            stack.start("api-server", "api-server", "--port", str(port))
            stack.start("dag-processor", "dag-processor")
            stack.wait_until_serving(timeout=900, sign_in=False)
            # The admin from the secret adds two team members through FAB's API, with no role.
            username = admin["AIRFLOW_ADMIN_USERNAME"]
            credentials = {"username": username, "password": admin["AIRFLOW_ADMIN_PASSWORD"]}
            stack.token = stack.request("POST", "/auth/token", credentials)["access_token"]
            for member, password in (VIEWER, DEPLOYER):
                user = {"username": member, "email": f"{member}@example.com", "first_name": member, "last_name": "test"}
                stack.request(
                    "POST", "/auth/fab/v1/users", user | {"password": password, "roles": [{"name": "Public"}]}
                )
            # The team lists them in their groups, and the next deploy's init job applies it.
            access_file = project.path / "config" / "access.yaml"
            access = yaml.safe_load(access_file.read_text())
            access["groups"]["viewers"]["members"] = [VIEWER[0]]
            access["groups"]["deployers"]["members"] = [DEPLOYER[0]]
            access_file.write_text(yaml.safe_dump(access))
            runs.append(init_job())
            # The admin changes the password the secret gave it; the next init run must keep it.
            path = f"/auth/fab/v1/users/{username}?update_mask=password"
            stack.request("PATCH", path, {"password": NEW_ADMIN_PASSWORD})
            stack.token = ""
            dump = [python, str(PROBES / "fab_tables.py"), *FAB_TABLES]
            before = json.loads(run(dump, project.path, env).stdout)
            runs.append(init_job())
            after = json.loads(run(dump, project.path, env).stdout)
            yield Deployment(project, stack, admin, runs, before, after)
        finally:
            stack.stop_all()


def test_the_init_job_creates_the_admin_from_the_secret(deployment):
    first = "\n".join(report(deployment.init_runs[0]))
    assert f"admin {deployment.admin['AIRFLOW_ADMIN_USERNAME']}: created" in first
    assert "role Deployer: created" in first
    for result in deployment.init_runs:
        assert deployment.admin["AIRFLOW_ADMIN_PASSWORD"] not in result.stdout + result.stderr
        assert NEW_ADMIN_PASSWORD not in result.stdout + result.stderr


def test_the_admin_signs_in_at_auth_token_with_its_current_password(deployment):
    username = deployment.admin["AIRFLOW_ADMIN_USERNAME"]
    admin = deployment.as_user(username, NEW_ADMIN_PASSWORD)
    assert "dags" in admin.request("GET", "/api/v2/dags?limit=1")
    # The rerun did not put the secret's password back.
    assert http_status(lambda: deployment.token(username, deployment.admin["AIRFLOW_ADMIN_PASSWORD"])) == 401
    assert http_status(lambda: deployment.token(username, "wrong-password-000")) == 401


def report(result: subprocess.CompletedProcess) -> list[str]:
    """The init job's own lines, without the log lines Airflow writes to stdout too."""
    return [line for line in result.stdout.splitlines() if line.startswith(("role ", "user ", "admin "))]


def test_rerunning_the_init_job_changes_nothing(deployment):
    assert deployment.tables_after_rerun == deployment.tables_before_rerun
    lines = report(deployment.init_runs[-1])
    assert len(lines) == 4 and all(line.endswith(("unchanged", "exists, left as it is")) for line in lines), lines


def test_groups_give_members_their_roles(deployment):
    second = report(deployment.init_runs[1])
    assert "user vera: roles set to Viewer" in second
    assert "user ci-deploy: roles set to Deployer" in second


def test_a_viewer_reads_but_gets_403_when_it_triggers_or_pauses(deployment, deployed):
    viewer = deployment.as_user(*VIEWER)
    dags = viewer.request("GET", "/api/v2/dags?limit=100")["dags"]
    assert dags, "the deploy shipped the project's DAGs; a Viewer must see them"
    dag_id = dags[0]["dag_id"]
    assert http_status(lambda: viewer.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})) == 403
    assert http_status(lambda: viewer.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})) == 403
    assert http_status(lambda: viewer.request("POST", "/api/v2/pools", {"name": "x", "slots": 1})) == 403


@pytest.fixture(scope="module")
def deployed(deployment) -> subprocess.CompletedProcess:
    volume = deployment.stack.home / "volume"
    return deployment.tool(
        "deploy",
        *DEPLOYER,
        "--target",
        "volume",
        "--timeout",
        "300",
        DEPLOY_TARGET_URI=str(volume),
        DEPLOY_BUNDLE_NAME=BUNDLE,
    )


def test_the_deploy_runs_with_the_deployer_role(deployment, deployed):
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert all(f"[{step}/6]" in deployed.stdout for step in range(1, 7))


def test_the_deployer_cannot_trigger_runs(deployment, deployed):
    deployer = deployment.as_user(*DEPLOYER)
    dag_id = deployer.request("GET", "/api/v2/dags?limit=1")["dags"][0]["dag_id"]
    assert (
        http_status(lambda: deployer.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})) == 403
    )


def test_the_pool_sync_runs_with_the_deployer_role(deployment, deployed):
    result = deployment.tool("scripts.sync_pools", *DEPLOYER)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_health_cli_runs_with_the_viewer_role(deployment, deployed):
    result = deployment.tool("scripts.dag_health", *VIEWER, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    json.loads(result.stdout)
