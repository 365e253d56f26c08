"""The DAG test_observability_run.py deploys: one run that gives every monitoring signal something to show.

produce's XCom (about 20 KB of JSON) stays in the metadata DB, under the 64 KiB object-storage
threshold; flaky fails its first try; hold keeps running until the test creates PROBE_RELEASE_FILE,
so the stuck-task query has something to find.
"""

import os
import time
from pathlib import Path

import pendulum
from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
    default_args={"owner": "tests", "retries": 1, "retry_delay": 1},
)
def observability_probe():
    @task
    def produce():
        return list(range(4000))

    @task
    def flaky(ti=None):
        if ti.try_number == 1:
            raise RuntimeError("the first try fails on purpose")

    @task
    def hold(rows):
        release, deadline = Path(os.environ["PROBE_RELEASE_FILE"]), time.monotonic() + 300
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        return len(rows)

    hold(produce())
    flaky()


observability_probe()
