"""The one client for Airflow's REST API v2 that deploy/, scripts/sync_pools.py and scripts/dag_health.py share.

    client = AirflowClient.from_environment(os.environ)
    for pool in client.paged("/api/v2/pools", "pools"):
        ...

Settings come only from the environment, never from arguments that `ps` or a CI log would show:
  AIRFLOW_API_URL        the api-server, https://airflow.example.com; plain http only for a
                         loopback host (http://localhost:8080 for `make run`)
  AIRFLOW_API_TOKEN      a bearer token issued beforehand; or
  AIRFLOW_API_USERNAME   with AIRFLOW_API_PASSWORD, exchanged for a token at POST /auth/token,
  AIRFLOW_API_PASSWORD   which every auth manager that issues tokens serves (Simple, FAB, Keycloak)

What every request gets:
  - The token goes only to AIRFLOW_API_URL's origin. A redirect to another scheme, host or port is
    refused with RedirectRefused, never followed; one within the origin is followed.
  - Connection errors, 429 and 502 to 504 are retried with exponential backoff (Retry-After is
    honoured). A POST is sent again only when the server cannot have acted on it (connection
    refused, 429, 503). 401 and 403 are never retried: a login with a stored password is renewed
    once, in case the token expired or the secret rotated, and then the error stands.
  - Failures raise ApiError or a subclass, which carries the HTTP status (None without an answer).

Standard library only, so it runs on any CI runner with Python 3.11+, without Airflow.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

URL_SETTING = "AIRFLOW_API_URL"
TOKEN_SETTING = "AIRFLOW_API_TOKEN"
USERNAME_SETTING = "AIRFLOW_API_USERNAME"
PASSWORD_SETTING = "AIRFLOW_API_PASSWORD"
PAGE_SIZE = 100
TIMEOUT_SECONDS = 30
MAX_REDIRECTS = 5
# A proxy or an api-server that is restarting or overloaded: the next try may well succeed.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
# The server says it did not act on the request, so even a POST may be sent again.
NOT_ACTED_ON_STATUSES = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# Airflow answers a token it cannot verify (forged, or signed with another secret) with 403 and
# this detail, not 401 (api_fastapi/core_api/security.py, resolve_user_from_token).
INVALID_TOKEN_DETAIL = "Invalid JWT token"


class ApiError(Exception):
    """A request that failed; status is its HTTP status, or None when no HTTP answer came."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConfigurationError(ApiError):
    """A missing or unsafe setting; the message names it."""


class Unreachable(ApiError):
    """No HTTP answer, after every retry."""


class AuthenticationError(ApiError):
    """The token or the password was rejected, or the token expired: HTTP 401, or 403 for an invalid token."""


class PermissionDenied(ApiError):
    """HTTP 403 for a valid token: the user is known, but its role does not allow this request."""


class RedirectRefused(ApiError):
    """A redirect the client will not follow: to another origin, where the token must not go."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before try number attempt + 1: doubling, or the server's Retry-After."""
        backoff = self.first_delay * 2 ** (attempt - 1)
        return min(max(backoff, retry_after or 0.0), self.max_delay)


DEFAULT_RETRY = RetryPolicy()


def is_loopback(host: str) -> bool:
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def without_query(url: str) -> str:
    """A URL fit for a message: a query string may hold a token."""
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(query="", fragment=""))


def checked_base_url(url: str) -> str:
    """AIRFLOW_API_URL, refused unless it is https (or http to a loopback host) with no credentials."""
    example = "such as https://airflow.example.com"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError:
        raise ConfigurationError(f"{URL_SETTING} is not a URL {example}") from None
    if parts.username or parts.password:
        # Not echoed: it holds a credential.
        raise ConfigurationError(
            f"{URL_SETTING} must not contain a user or password; set {TOKEN_SETTING}, or {USERNAME_SETTING} "
            f"and {PASSWORD_SETTING}"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigurationError(f"{URL_SETTING} must be the api-server's base URL {example}, not {url!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{URL_SETTING}={url} uses plain http, so the token and password would cross the network "
            "unencrypted: use https://. Plain http is accepted only for a loopback host (localhost, "
            "127.0.0.1, ::1)."
        )
    return url.rstrip("/")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Hands every redirect back to AirflowClient, which decides whether the token may follow."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _error_detail(error: urllib.error.HTTPError) -> str:
    raw = error.read().decode(errors="replace")
    try:
        detail = json.loads(raw).get("detail", raw)
    except (ValueError, AttributeError):
        detail = raw
    text = detail if isinstance(detail, str) else json.dumps(detail)
    return " ".join(text.split())[:300]


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    try:
        return float(error.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _stderr(message: str) -> None:
    print(f"airflow_api: {message}", file=sys.stderr, flush=True)


class AirflowClient:
    def __init__(
        self,
        base_url: str,
        token: str = "",
        credentials: tuple[str, str] | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        notify: Callable[[str], None] = _stderr,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.base_url = checked_base_url(base_url)
        self.token = token
        self._credentials = credentials
        self.retry, self.sleep = retry or DEFAULT_RETRY, sleep or time.sleep
        self.notify, self.timeout = notify, timeout
        handlers: list[urllib.request.BaseHandler] = [_NoRedirects()]
        if is_loopback(urllib.parse.urlsplit(self.base_url).hostname or ""):
            # A proxy from the environment would carry a loopback request, token and all, off the machine.
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **options: Any) -> AirflowClient:
        """A client with a token: AIRFLOW_API_TOKEN, or one issued for AIRFLOW_API_USERNAME and _PASSWORD."""
        base_url = environ.get(URL_SETTING, "")
        if not base_url:
            raise ConfigurationError(
                f"set {URL_SETTING}, e.g. https://airflow.example.com (locally http://localhost:8080)"
            )
        if token := environ.get(TOKEN_SETTING):
            return cls(base_url, token=token, **options)
        username, password = environ.get(USERNAME_SETTING), environ.get(PASSWORD_SETTING)
        if not (username and password):
            raise ConfigurationError(f"set {TOKEN_SETTING}, or {USERNAME_SETTING} and {PASSWORD_SETTING}")
        client = cls(base_url, credentials=(username, password), **options)
        client.log_in()
        return client

    def log_in(self) -> None:
        assert self._credentials, "log_in needs a username and password"
        username, password = self._credentials
        self.token = ""
        answer = self._send("POST", "/auth/token", {"username": username, "password": password}, idempotent=True)
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise ApiError(f"POST /auth/token answered without an access_token: is {URL_SETTING} the api-server?")
        self.token = answer["access_token"]

    def request(self, method: str, path: str, body: object = None, params: Mapping[str, object] | None = None) -> Any:
        """One call; path starts at the API root (/api/v2/...). Returns the decoded JSON answer, {} if none."""
        if params:
            path = f"{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            return self._send(method, path, body)
        except AuthenticationError:
            if not self._credentials:
                raise
            self.log_in()  # the token may have expired during a long run
            return self._send(method, path, body)

    def paged(
        self, path: str, key: str, params: Mapping[str, object] | None = None, by_cursor: bool = False
    ) -> Iterator[dict]:
        """Every item of a collection, page by page.

        by_cursor follows next_cursor (DAG runs and task instances offer it), so rows added while
        paging never shift a page; otherwise offsets run up to total_entries.
        """
        params = {**(params or {}), "limit": PAGE_SIZE}
        offset, cursor = 0, ""
        while True:
            page = self.request("GET", path, params=params | ({"cursor": cursor} if by_cursor else {"offset": offset}))
            if not isinstance(page, dict) or not isinstance(page.get(key), list):
                raise ApiError(f"GET {path} answered without a list of {key!r}: is {URL_SETTING} the api-server?")
            yield from page[key]
            offset += len(page[key])
            if by_cursor:
                if not (cursor := page.get("next_cursor")):
                    return
            elif not page[key] or offset >= page.get("total_entries", 0):
                return

    def _send(self, method: str, path: str, body: object, idempotent: bool | None = None) -> Any:
        repeatable = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return self._follow(method, path, body)
            except _Transient as failure:
                if not (repeatable or failure.not_acted_on) or attempt == self.retry.attempts:
                    raise failure.error from None
                wait = self.retry.delay(attempt, failure.retry_after)
                self.notify(f"{failure.error}; trying again in {wait:g} s ({attempt + 1} of {self.retry.attempts})")
                self.sleep(wait)
        raise AssertionError("unreachable")

    def _follow(self, method: str, path: str, body: object) -> Any:
        """One try, following redirects within the origin only."""
        url = self.base_url + path
        for _ in range(MAX_REDIRECTS + 1):
            try:
                return self._open(method, url, body)
            except urllib.error.HTTPError as error:
                location = error.headers.get("Location") if 300 <= error.code < 400 else None
                if not location:
                    raise self._http_error(method, path, error) from None
                target = urllib.parse.urljoin(url, location)
                if origin(target) != origin(self.base_url):
                    raise RedirectRefused(
                        f"{method} {path} was redirected (HTTP {error.code}) to {without_query(target)}, another "
                        f"origin than {URL_SETTING}={self.base_url}; the token is sent to that origin only. Set "
                        f"{URL_SETTING} to the address the API answers on.",
                        error.code,
                    ) from None
                if error.code not in (307, 308) and method not in ("GET", "HEAD"):
                    raise ApiError(
                        f"{method} {path} was redirected (HTTP {error.code}), which would turn it into a GET: set "
                        f"{URL_SETTING} to the address the API answers on",
                        error.code,
                    ) from None
                url = target
        raise ApiError(f"{method} {path}: more than {MAX_REDIRECTS} redirects")

    def _open(self, method: str, url: str, body: object) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError, HTTPException) as error:
            raise self._connection_error(error) from None
        if not payload:
            return {}
        try:
            return json.loads(payload)
        except ValueError:
            path = urllib.parse.urlsplit(url).path
            raise ApiError(f"{method} {path} answered, but not in JSON: is {URL_SETTING} the api-server?") from None

    def _http_error(self, method: str, path: str, error: urllib.error.HTTPError) -> Exception:
        detail = _error_detail(error)
        message = f"{method} {path.split('?')[0]} failed: HTTP {error.code} {detail}".rstrip()
        if error.code == 401 or (error.code == 403 and detail == INVALID_TOKEN_DETAIL):
            return AuthenticationError(message, error.code)
        if error.code == 403:
            return PermissionDenied(message, 403)
        if error.code in TRANSIENT_STATUSES:
            return _Transient(ApiError(message, error.code), error.code in NOT_ACTED_ON_STATUSES, _retry_after(error))
        return ApiError(message, error.code)

    def _connection_error(self, error: Exception) -> Exception:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(reason, ssl.SSLCertVerificationError):
            return Unreachable(
                f"cannot reach {self.base_url}: its TLS certificate is not trusted ({reason.verify_message}); "
                "set SSL_CERT_FILE to your CA bundle"
            )
        if isinstance(reason, socket.gaierror) and reason.errno != socket.EAI_AGAIN:
            return Unreachable(f"cannot reach {self.base_url}: no such host ({reason.strerror})")
        refused = isinstance(reason, ConnectionRefusedError) or getattr(reason, "errno", None) == errno.ECONNREFUSED
        return _Transient(Unreachable(f"cannot reach {self.base_url}: {reason}"), not_acted_on=refused)


class _Transient(Exception):
    """A failure worth another try; error is what the caller sees once the tries run out."""

    def __init__(self, error: ApiError, not_acted_on: bool, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error, self.not_acted_on, self.retry_after = error, not_acted_on, retry_after
