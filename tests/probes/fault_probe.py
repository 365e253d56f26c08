"""A task that hangs on its first try only, so a worker killed under it can be retried to success."""

import time

import pendulum
from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
    default_args={"owner": "tests", "retries": 1, "retry_delay": 1},
)
def fault_probe():
    @task
    def hang_on_first_try(ti=None):
        if ti.try_number == 1:
            time.sleep(600)

    hang_on_first_try()


fault_probe()
