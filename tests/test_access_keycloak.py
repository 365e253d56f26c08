"""Keycloak: the generated settings loaded by the provider's own code, and its token flow end to end
against a local OpenID Connect stand-in, since no Keycloak server runs here.

The stand-in answers the three Keycloak calls the provider makes: the password grant behind
/auth/token, the userinfo call, and the UMA decisions behind every authorization check. It
grants its viewer read scopes only, as Keycloak's Viewer role policy does. What it cannot show:
Keycloak's own policy evaluation, the browser login redirect, and `airflow keycloak-auth-manager
create-all` against a real realm.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from airflow_stack import AirflowStack, http_status
from helpers import PROBES, airflow_env, project_venv, run
from services import free_port, postgres_server

pytestmark = pytest.mark.airflow

VARIANT = "gcp-secrets"  # auth_manager keycloak, with the Helm values
CLIENT_SECRET = "keycloak-client-secret-never-printed"
USERS = {"vera": ("vera-password", "viewer"), "ada": ("ada-password", "admin")}
READ_SCOPES = {"GET", "LIST", "MENU"}


@dataclass
class OidcStandIn:
    url: str = ""
    requests: list[tuple[str, dict]] = field(default_factory=list)


@contextlib.contextmanager
def oidc_stand_in(realm: str, client_id: str) -> Iterator[OidcStandIn]:
    state = OidcStandIn()
    tokens: dict[str, str] = {}  # access token -> user

    class Handler(BaseHTTPRequestHandler):
        def _json(self, status: int, body) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
            state.requests.append((self.path, form | {"authorization": [self.headers.get("Authorization", "")]}))
            if self.path != f"/realms/{realm}/protocol/openid-connect/token":
                return self._json(404, {"error": "not_found"})
            grant = form.get("grant_type", [""])[0]
            if grant == "password":
                if form.get("client_id") != [client_id] or form.get("client_secret") != [CLIENT_SECRET]:
                    return self._json(401, {"error": "unauthorized_client"})
                user = form.get("username", [""])[0]
                if USERS.get(user, ("",))[0] != form.get("password", [None])[0]:
                    return self._json(401, {"error": "invalid_grant"})
                token = f"access-{user}-{len(tokens)}"
                tokens[token] = user
                return self._json(200, {"access_token": token, "refresh_token": f"refresh-{user}", "expires_in": 300})
            if grant == "urn:ietf:params:oauth:grant-type:uma-ticket":
                user = tokens.get(self.headers.get("Authorization", "").removeprefix("Bearer "))
                if user is None:
                    return self._json(401, {"error": "invalid_token"})
                role = USERS[user][1]
                wanted = [tuple(permission.rsplit("#", 1)) for permission in form.get("permission", [])]
                allowed = [(resource, scope) for resource, scope in wanted if role == "admin" or scope in READ_SCOPES]
                if form.get("response_mode") == ["permissions"]:
                    return self._json(200, [{"rsname": resource, "scopes": [scope]} for resource, scope in allowed])
                return (
                    self._json(200, {"result": True})
                    if allowed == wanted
                    else self._json(403, {"error": "access_denied"})
                )
            return self._json(400, {"error": "unsupported_grant_type"})

        def do_GET(self) -> None:
            state.requests.append((self.path, {}))
            user = tokens.get(self.headers.get("Authorization", "").removeprefix("Bearer "))
            if self.path == f"/realms/{realm}/protocol/openid-connect/userinfo" and user:
                return self._json(200, {"sub": f"id-{user}", "preferred_username": user})
            return self._json(401, {"error": "invalid_token"})

        def log_message(self, *args) -> None:  # keep test output readable
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def keycloak_env(project, venv, home, server_url: str, secret_file) -> dict[str, str]:
    """The api-server's environment on Kubernetes: the Helm values' apiServer.env, the mounted Secret."""
    env = airflow_env(project.path, venv, home)
    del env["AIRFLOW__CORE__AUTH_MANAGER"]  # config/airflow.cfg's, as in production
    return env | {
        "AIRFLOW__KEYCLOAK_AUTH_MANAGER__SERVER_URL": server_url,
        "AIRFLOW__KEYCLOAK_AUTH_MANAGER__CLIENT_SECRET_CMD": f"cat {secret_file}",
    }


def test_the_provider_loads_the_generated_keycloak_settings(baked, tmp_path):
    project = baked(VARIANT)
    venv = project_venv(project)
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(CLIENT_SECRET)
    env = keycloak_env(project, venv, tmp_path, "https://keycloak.example.com", secret_file)
    python, probe = str(venv / "bin" / "python"), str(PROBES / "keycloak_settings.py")
    result = run([python, probe], project.path, env | {"EXPECTED_SECRET": CLIENT_SECRET})
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["class"] == "airflow.providers.keycloak.auth_manager.keycloak_auth_manager.KeycloakAuthManager"
    assert loaded["server_url"].rstrip("/") == "https://keycloak.example.com"
    assert (loaded["realm"], loaded["client_id"]) == ("airflow", "airflow")
    # The Helm values' CLIENT_SECRET_CMD reads the mounted Secret: Airflow accepts _CMD for it.
    assert loaded["secret_matches"] is True
    assert CLIENT_SECRET not in result.stdout + result.stderr
    # Without a client secret, the error names the setting.
    del env["AIRFLOW__KEYCLOAK_AUTH_MANAGER__CLIENT_SECRET_CMD"]
    failed = run([python, probe], project.path, env | {"EXPECTED_SECRET": ""}, check=False)
    assert failed.returncode != 0 and "client_secret" in failed.stderr


@pytest.fixture(scope="module")
def keycloak_airflow(baked, tmp_path_factory):
    project = baked(VARIANT)
    venv = project_venv(project)
    home = tmp_path_factory.mktemp("keycloak-airflow")
    secret_file = home / "client-secret"
    secret_file.write_text(CLIENT_SECRET)
    with postgres_server(("airflow",)) as urls, oidc_stand_in("airflow", "airflow") as keycloak:
        port = free_port()
        env = keycloak_env(project, venv, home, keycloak.url, secret_file) | {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"].replace("postgresql://", "postgresql+psycopg2://"),
            "AIRFLOW__API__PORT": str(port),
            # One api-server worker, given time to start on a busy machine: this variant's cfg
            # asks for two, each importing the Google and Kubernetes providers.
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__WORKER_TIMEOUT": "900",
        }
        stack = AirflowStack(project, venv, home, env, port=port)
        stack.airflow("db", "migrate")
        try:
            stack.start("api-server", "api-server", "--port", str(port))
            stack.start("dag-processor", "dag-processor")
            stack.wait_until_serving(timeout=900, sign_in=False)
            stack.token = signed_in(stack, "ada").token
            stack.wait_for_dags({"example_safe_taskflow"}, timeout=900)
            stack.token = ""
            yield stack, keycloak
        finally:
            stack.stop_all()


def signed_in(stack: AirflowStack, username: str) -> AirflowStack:
    user = AirflowStack(stack.project, stack.venv, stack.home, stack.env, port=stack.port)
    user.token = stack.request("POST", "/auth/token", {"username": username, "password": USERS[username][0]})[
        "access_token"
    ]
    return user


def test_auth_token_exchanges_the_password_at_keycloak(keycloak_airflow):
    stack, keycloak = keycloak_airflow
    signed_in(stack, "vera")
    grants = [form for path, form in keycloak.requests if form.get("grant_type") == ["password"]]
    assert grants and grants[-1]["username"] == ["vera"] and grants[-1]["client_secret"] == [CLIENT_SECRET]
    wrong = {"username": "vera", "password": "wrong"}
    assert http_status(lambda: stack.request("POST", "/auth/token", wrong)) in (401, 403)
    assert CLIENT_SECRET not in stack.log("api-server")


def test_keycloak_decides_what_a_viewer_may_do(keycloak_airflow):
    stack, _ = keycloak_airflow
    viewer = signed_in(stack, "vera")
    dag = viewer.request("GET", "/api/v2/dags/example_safe_taskflow")
    assert dag["dag_id"] == "example_safe_taskflow"
    trigger = f"/api/v2/dags/{dag['dag_id']}/dagRuns"
    assert http_status(lambda: viewer.request("POST", trigger, {"logical_date": None})) == 403
    admin = signed_in(stack, "ada")
    assert admin.request("POST", trigger, {"logical_date": None})["state"] == "queued"
