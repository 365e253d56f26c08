"""One client's side of benchmarks/rest_client.py, run in a fresh interpreter from a baked project's root.

    python rest_client_driver.py {ours|official} {list|redirect|retry|plain-http|unauthorized} URL [OTHER_URL]

Prints one JSON document: timings for `list`, what happened for the probes.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

TOKEN = "benchmark.jwt.token"


def ours(url: str):
    from scripts.airflow_api import AirflowClient, RetryPolicy

    return AirflowClient(url, token=TOKEN, retry=RetryPolicy(first_delay=0.01), notify=lambda message: None)


def official(url: str):
    from airflow_client.client import ApiClient, Configuration, PoolApi

    return PoolApi(ApiClient(Configuration(host=url, access_token=TOKEN)))


def list_pools(kind: str, client) -> list[str]:
    if kind == "ours":
        return [pool["name"] for pool in client.paged("/api/v2/pools", "pools")]
    names: list[str] = []
    while True:  # the official client has no paging helper: offsets by hand
        page = client.get_pools(limit=100, offset=len(names))
        names += [pool.name for pool in page.pools]
        if not page.pools or len(names) >= page.total_entries:
            return names


def get_one(kind: str, client) -> object:
    return client.request("GET", "/api/v2/pools/p0") if kind == "ours" else client.get_pool("p0")


def outcome(action) -> str:
    try:
        action()
    except Exception as error:  # noqa: BLE001 (the probe reports whatever the client raises)
        status = getattr(error, "status", None)
        return f"{type(error).__name__}" + (f" (status {status})" if status is not None else "")
    return "succeeded"


def main() -> None:
    kind, mode, url = sys.argv[1:4]
    make = ours if kind == "ours" else official
    if mode == "list":
        client = make(url)
        timings = []
        for _ in range(int(sys.argv[4])):
            start = time.perf_counter()
            count = len(list_pools(kind, client))
            timings.append((time.perf_counter() - start) * 1000)
        print(json.dumps({"pools": count, "median_ms": statistics.median(timings)}))
    elif mode == "plain-http":
        result = outcome(lambda: make("http://airflow.example.com"))
        print(json.dumps({"result": "accepted" if result == "succeeded" else f"refused: {result}"}))
    else:
        client = make(url)
        print(json.dumps({"result": outcome(lambda: get_one(kind, client))}))


if __name__ == "__main__":
    main()
