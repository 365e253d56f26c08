"""The Keycloak auth manager and client as Airflow builds them from the configuration, as one JSON line.

Whether the client secret Airflow reads (through CLIENT_SECRET_CMD) is the one in EXPECTED_SECRET
is printed as a boolean, never the secret itself.
"""

from __future__ import annotations

import json
import os

from airflow.api_fastapi.app import create_auth_manager
from airflow.configuration import conf
from airflow.providers.keycloak.auth_manager.keycloak_auth_manager import KeycloakAuthManager

manager = create_auth_manager()
client = KeycloakAuthManager.get_keycloak_client()
print(
    json.dumps(
        {
            "class": type(manager).__module__ + "." + type(manager).__name__,
            "server_url": client.connection.base_url,
            "realm": client.realm_name,
            "client_id": client.client_id,
            "secret_matches": conf.get("keycloak_auth_manager", "client_secret") == os.environ["EXPECTED_SECRET"],
            "login_url": manager.get_url_login(),
        }
    )
)
