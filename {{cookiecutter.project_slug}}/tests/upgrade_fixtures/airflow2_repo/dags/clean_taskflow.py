"""Already written for Airflow 3: nothing to report."""

import pendulum
from airflow.sdk import dag, task


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"owner": "analytics", "retries": 2},
    tags=["analytics"],
)
def clean_taskflow():
    @task(pool="warehouse")
    def extract(data_interval_start=None, dag_run=None):
        # Manual runs have no data interval on Airflow 3; every run has run_after.
        return str(data_interval_start or dag_run.run_after)

    @task
    def load(day: str) -> None:
        print("loading", day)

    load(extract())


clean_taskflow()
