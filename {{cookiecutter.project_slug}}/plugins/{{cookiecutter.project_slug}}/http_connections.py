"""What an HTTP connection means, in one place: ResilientHttpOperator and HttpConditionTrigger both read it here.

A connection is read the way the http provider's HttpHook reads it, except for the scheme:
HttpHook takes it from the schema field and falls back to http, so the URI
``https://api.example.com`` (scheme in conn_type) would be called over plain http. Here the
scheme the user wrote wins:

- ``https://api.example.com/v1`` (a URI): https, path ``/v1``.
- host ``https://api.example.com/v2`` (a full URL as host): used as it is.
- schema ``https`` with host ``api.example.com`` (HttpHook's style): https.
- no scheme anywhere: http, as HttpHook does.

Login and password are HTTP basic auth. Extras are HttpHook's: ``verify`` (or ``verify_ssl``;
true, false or a CA bundle path), ``cert``, ``proxies`` (or ``proxy``), ``timeout``,
``allow_redirects``, ``max_redirects``, ``trust_env``; every other extra is a request header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

WEB_SCHEMES = ("http", "https")
# Extras HttpHook reads as options; the rest of a connection's extras are sent as headers.
OPTION_EXTRAS = frozenset(
    {
        "stream",
        "cert",
        "proxies",
        "proxy",
        "timeout",
        "verify",
        "verify_ssl",
        "allow_redirects",
        "max_redirects",
        "trust_env",
        "check_response",
        "srv_lookup",
    }
)
# A URL's query string often holds a key or a token; messages only need to say where a call went.
_URL_WITH_QUERY = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#'\"<>]*)\?[^\s#'\"<>]*")


def base_url(connection: Any) -> str:
    """The base URL an http connection describes (see the module docstring for the forms it accepts)."""
    host = connection.host or ""
    schema = connection.schema or ""
    if "://" in host:
        url, path = host, ""
    elif schema in WEB_SCHEMES:
        url, path = f"{schema}://{host}", ""
    else:
        scheme = connection.conn_type if connection.conn_type in WEB_SCHEMES else "http"
        url, path = f"{scheme}://{host}", schema
    if connection.port:
        url = f"{url}:{connection.port}"
    return join_url(url, path)


def join_url(base: str, endpoint: str) -> str:
    if base.endswith("/") or endpoint.startswith("/") or not endpoint:
        return base + endpoint
    return f"{base}/{endpoint}"


def redact_url(url: str) -> str:
    """The URL without credentials, query string or fragment: where a call went, fit for a message."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    query = "..." if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def without_query_strings(text: str) -> str:
    """The text with every URL's query string cut to ``?...``."""
    return _URL_WITH_QUERY.sub(r"\1?...", text)


@dataclass(frozen=True)
class HttpSettings:
    """Everything a connection says about how to call it, for a client other than HttpHook's."""

    conn_id: str
    base_url: str
    auth: tuple[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None
    proxies: dict[str, str] = field(default_factory=dict)
    trust_env: bool = True
    allow_redirects: bool = True
    max_redirects: int = 30

    @classmethod
    def from_connection(cls, connection: Any) -> HttpSettings:
        """Read a connection; a malformed extra is a ValueError naming the connection and the extra."""
        extra = dict(connection.extra_dejson)
        conn_id = connection.conn_id

        def problem(name: str, expected: str) -> ValueError:
            return ValueError(f"connection {conn_id!r}: extra {name!r} must be {expected}, got {extra[name]!r}")

        verify_name = "verify" if "verify" in extra else "verify_ssl"
        verify = extra.get(verify_name, True)
        if isinstance(verify, str) and verify.lower() in ("true", "false"):
            verify = verify.lower() == "true"
        if not isinstance(verify, bool | str):
            raise problem(verify_name, "true, false or the path of a CA bundle")
        proxies_name = "proxies" if "proxies" in extra else "proxy"
        proxies = extra.get(proxies_name) or {}
        if isinstance(proxies, str):
            proxies = {"http": proxies, "https": proxies}
        if not isinstance(proxies, dict) or not all(isinstance(value, str) for value in proxies.values()):
            raise problem(proxies_name, 'a proxy URL or a mapping such as {"https": "http://proxy:3128"}')
        cert = extra.get("cert")
        if cert is not None and not isinstance(cert, str | list | tuple):
            raise problem("cert", "a client certificate path or a [certificate, key] pair")
        return cls(
            conn_id=conn_id,
            base_url=base_url(connection),
            auth=(connection.login, connection.password or "") if connection.login else None,
            headers={name: str(value) for name, value in extra.items() if name not in OPTION_EXTRAS},
            verify=verify,
            cert=tuple(cert) if isinstance(cert, list) else cert,
            proxies=proxies,
            trust_env=_flag(extra, "trust_env", True, problem),
            allow_redirects=_flag(extra, "allow_redirects", True, problem),
            max_redirects=_whole_number(extra, "max_redirects", 30, problem),
        )


def _flag(extra: dict[str, Any], name: str, default: bool, problem) -> bool:
    value = extra.get(name, default)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise problem(name, "true or false")
    return value


def _whole_number(extra: dict[str, Any], name: str, default: int, problem) -> int:
    value = extra.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise problem(name, "a whole number") from None
    if number < 0:
        raise problem(name, "a whole number")
    return number
