"""The defaults every DAG in this project starts from."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

OWNER = {{ cookiecutter.owner_team | tojson }}
CONTACT_EMAIL = {{ cookiecutter.contact_email | tojson }}


def default_args(**overrides: Any) -> dict[str, Any]:
    """Task defaults for a DAG: team ownership, and retries that back off.

    Retries wait 1, 2, 4, 8 ... minutes, capped at 30, so a flapping dependency gets time
    to recover without a failing task waiting hours between tries.
    """
    return {
        "owner": OWNER,
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=1),
        **overrides,
    }
