"""scripts/airflow_api.py against real HTTP servers on loopback ports: login, origins, retries, errors, pages."""

from __future__ import annotations

import pytest

from scripts.airflow_api import (
    AirflowClient,
    ApiError,
    AuthenticationError,
    ConfigurationError,
    PermissionDenied,
    RedirectRefused,
    RetryPolicy,
    Unreachable,
)

from local_servers import Reply, Request, serve

TOKEN = "issued.jwt.token"


def client(url: str, sleeps: list[float] | None = None, **options) -> AirflowClient:
    sleeps = [] if sleeps is None else sleeps
    return AirflowClient(url, token=TOKEN, sleep=sleeps.append, notify=lambda message: None, **options)


def ok(request: Request) -> Reply:
    return Reply(200, {"path": request.path})


def test_a_password_is_exchanged_for_a_token_that_every_later_request_carries():
    def api(request: Request) -> Reply:
        if request.path == "/auth/token":
            good = request.json() == {"username": "deployer", "password": "s3cret"}
            return Reply(201, {"access_token": TOKEN}) if good else Reply(401, {"detail": "Invalid credentials"})
        authorized = request.headers["Authorization"] == f"Bearer {TOKEN}"
        return Reply(200, {"pools": []}) if authorized else Reply(401, {"detail": "Not authenticated"})

    with serve(api) as server:
        environ = {"AIRFLOW_API_URL": server.url, "AIRFLOW_API_USERNAME": "deployer", "AIRFLOW_API_PASSWORD": "s3cret"}
        logged_in = AirflowClient.from_environment(environ)
        assert logged_in.token == TOKEN and logged_in.request("GET", "/api/v2/pools") == {"pools": []}
        assert [request.path for request in server.requests] == ["/auth/token", "/api/v2/pools"]
        assert "Authorization" not in server.requests[0].headers

        with pytest.raises(AuthenticationError, match="HTTP 401 Invalid credentials") as refused:
            AirflowClient.from_environment(environ | {"AIRFLOW_API_PASSWORD": "wrong"})
        assert refused.value.status == 401 and "wrong" not in str(refused.value)


def test_a_pre_issued_token_is_used_as_it_is():
    with serve(ok) as server:
        issued = AirflowClient.from_environment({"AIRFLOW_API_URL": server.url, "AIRFLOW_API_TOKEN": TOKEN})
        issued.request("GET", "/api/v2/dags")
    assert [request.path for request in server.requests] == ["/api/v2/dags"]
    assert server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "AIRFLOW_API_URL"),
        ({"AIRFLOW_API_URL": "http://127.0.0.1:9"}, "AIRFLOW_API_TOKEN, or AIRFLOW_API_USERNAME"),
        ({"AIRFLOW_API_URL": "http://airflow.example.com", "AIRFLOW_API_TOKEN": TOKEN}, "plain http"),
        ({"AIRFLOW_API_URL": "ftp://airflow.example.com", "AIRFLOW_API_TOKEN": TOKEN}, "base URL"),
        ({"AIRFLOW_API_URL": "https://airflow.example.com/?next=x", "AIRFLOW_API_TOKEN": TOKEN}, "base URL"),
    ],
    ids=["no-url", "no-credentials", "plain-http", "not-http", "query"],
)
def test_missing_or_unsafe_settings_are_refused_naming_the_setting(environ, named):
    with pytest.raises(ConfigurationError, match=named) as refused:
        AirflowClient.from_environment(environ)
    assert "AIRFLOW_API_" in str(refused.value) and refused.value.status is None


def test_credentials_in_the_url_are_refused_without_being_echoed():
    with pytest.raises(ConfigurationError, match="must not contain a user or password") as refused:
        AirflowClient("https://admin:hunter2@airflow.example.com", token=TOKEN)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("url", ["http://localhost:8080", "http://127.0.0.1:8080/", "http://[::1]:8080", "https://a.b"])
def test_https_or_a_loopback_host_is_accepted(url):
    assert AirflowClient(url, token=TOKEN).base_url == url.rstrip("/")


@pytest.mark.parametrize(("status", "method"), [(302, "GET"), (307, "POST"), (308, "PATCH")])
def test_a_redirect_to_another_origin_is_refused_and_the_token_never_leaves(status, method):
    with serve(ok) as elsewhere:
        moved = Reply(status, headers={"Location": f"{elsewhere.url}/collect?from=api"})
        with serve(lambda request: moved) as api:
            with pytest.raises(RedirectRefused, match="another origin than AIRFLOW_API_URL") as refused:
                client(api.url).request(method, "/api/v2/pools", {"name": "p"} if method != "GET" else None)
    assert refused.value.status == status
    assert "from=api" not in str(refused.value), "a redirect's query string may carry a secret"
    assert elsewhere.requests == [], "nothing, and no token, reached the other origin"


def test_a_redirect_within_the_origin_is_followed_with_the_token():
    def api(request: Request) -> Reply:
        if request.path == "/old/api/v2/version":
            return Reply(301, headers={"Location": "/api/v2/version"})
        return Reply(200, {"version": "3.3.2"})

    with serve(api) as server:
        assert client(server.url + "/old").request("GET", "/api/v2/version") == {"version": "3.3.2"}
    assert [request.headers["Authorization"] for request in server.requests] == [f"Bearer {TOKEN}"] * 2


def test_a_loopback_api_is_never_reached_through_a_proxy(monkeypatch):
    with serve(ok) as proxy, serve(ok) as api:
        monkeypatch.setenv("http_proxy", proxy.url)
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        client(api.url).request("GET", "/api/v2/version")
    assert proxy.requests == [] and len(api.requests) == 1


def flaky(failures: list[Reply]):
    """Answers with each failure in turn, then 200."""

    def answer(request: Request) -> Reply:
        return failures.pop(0) if failures else Reply(200, {"done": True})

    return answer


def test_transient_failures_are_retried_with_backoff_and_retry_after():
    sleeps: list[float] = []
    failures = [Reply(503), Reply(502), Reply(429, headers={"Retry-After": "7"}), Reply(504)]
    with serve(flaky(failures)) as server:
        assert client(server.url, sleeps).request("GET", "/api/v2/pools") == {"done": True}
    assert len(server.requests) == 5
    assert sleeps == [1.0, 2.0, 7.0, 8.0], "doubling, but never sooner than the server's Retry-After"


def test_retries_end_with_the_last_error_and_its_status():
    sleeps: list[float] = []
    with serve(lambda request: Reply(503, {"detail": "starting"})) as server:
        with pytest.raises(ApiError, match="HTTP 503 starting") as failed:
            client(server.url, sleeps, retry=RetryPolicy(attempts=3)).request("GET", "/api/v2/pools")
    assert failed.value.status == 503 and len(server.requests) == 3 and sleeps == [1.0, 2.0]


def test_a_post_is_only_repeated_when_the_server_did_not_act_on_it():
    with serve(flaky([Reply(429), Reply(503)])) as server:
        client(server.url).request("POST", "/api/v2/pools", {"name": "p", "slots": 1})
    assert len(server.requests) == 3
    # A gateway timeout may come after the pool was created: sending it again could fail or duplicate.
    with serve(flaky([Reply(504)])) as server:
        with pytest.raises(ApiError) as failed:
            client(server.url).request("POST", "/api/v2/pools", {"name": "p", "slots": 1})
    assert failed.value.status == 504 and len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "detail", "error"),
    [
        (401, "Not authenticated", AuthenticationError),
        # What Airflow answers to a forged token, or one signed with another jwt_secret.
        (403, "Invalid JWT token", AuthenticationError),
        (403, "Forbidden", PermissionDenied),
        (404, "Pool not found", ApiError),
    ],
)
def test_client_errors_are_typed_carry_the_status_and_are_never_retried(status, detail, error):
    with serve(lambda request: Reply(status, {"detail": detail})) as server:
        with pytest.raises(error) as failed:
            client(server.url).request("GET", "/api/v2/pools/missing")
    assert failed.value.status == status and len(server.requests) == 1
    assert f"GET /api/v2/pools/missing failed: HTTP {status} {detail}" == str(failed.value)
    if error is ApiError:
        assert not isinstance(failed.value, (AuthenticationError, PermissionDenied))


def test_an_expired_token_is_renewed_once_when_a_password_is_known():
    tokens = iter(["first", "second"])

    def api(request: Request) -> Reply:
        if request.path == "/auth/token":
            return Reply(201, {"access_token": next(tokens)})
        fresh = request.headers["Authorization"] == "Bearer second"
        return Reply(200, {"dags": []}) if fresh else Reply(401, {"detail": "Token expired"})

    with serve(api) as server:
        environ = {"AIRFLOW_API_URL": server.url, "AIRFLOW_API_USERNAME": "u", "AIRFLOW_API_PASSWORD": "p"}
        renewing = AirflowClient.from_environment(environ)
        assert renewing.request("GET", "/api/v2/dags") == {"dags": []}
    assert [request.path for request in server.requests] == ["/auth/token", "/api/v2/dags"] * 2


def test_an_unreachable_api_is_retried_then_reported_without_a_status():
    sleeps: list[float] = []
    with serve(ok) as closed:
        url = closed.url
    with pytest.raises(Unreachable, match=f"cannot reach {url}") as failed:
        client(url, sleeps).request("GET", "/api/v2/version")
    assert failed.value.status is None and sleeps == [1.0, 2.0, 4.0, 8.0]


def test_pages_follow_offsets_to_total_entries_or_the_cursor():
    pools = [{"name": f"p{index}"} for index in range(250)]

    def api(request: Request) -> Reply:
        limit = int(request.query["limit"][0])
        if "cursor" in request.query:
            start = int(request.query["cursor"][0] or 0)
            following = str(start + limit) if start + limit < len(pools) else None
            return Reply(200, {"pools": pools[start : start + limit], "next_cursor": following})
        offset = int(request.query["offset"][0])
        return Reply(200, {"pools": pools[offset : offset + limit], "total_entries": len(pools)})

    with serve(api) as server:
        by_offset = list(client(server.url).paged("/api/v2/pools", "pools", {"name_pattern": "p"}))
        offsets = [request.query["offset"] for request in server.requests]
        server.requests.clear()
        by_cursor = list(client(server.url).paged("/api/v2/pools", "pools", by_cursor=True))
        cursors = [request.query["cursor"] for request in server.requests]
    assert by_offset == pools == by_cursor
    assert offsets == [["0"], ["100"], ["200"]] and cursors == [[""], ["100"], ["200"]]


def test_an_answer_that_is_not_the_api_is_named_as_such():
    with serve(lambda request: Reply(200, {"unexpected": True})) as server:
        with pytest.raises(ApiError, match="without a list of 'pools'.*AIRFLOW_API_URL"):
            list(client(server.url).paged("/api/v2/pools", "pools"))
