"""The contexts Airflow hands alert callbacks, built the way a worker and the scheduler build them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.api_fastapi.core_api.datamodels.dag_run import DAGRunResponse
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Context
from airflow.sdk.api.datamodels._generated import DagRun, TIRunContext
from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
from airflow.triggers.callback import CallbackTrigger

WHEN = datetime(2026, 1, 2, tzinfo=UTC)
RUN_ID = "scheduled__2026-01-02T00:00:00+00:00"
FINAL_TRY = 4  # retries=3 in task_context, so the fourth try is the last


def task_context(
    *,
    tags: tuple[str, ...] = (),
    try_number: int = FINAL_TRY,
    error: BaseException | None = None,
    logical_date: datetime | None = WHEN,
    map_index: int = -1,
) -> Context:
    """The context a task callback gets, built the way the worker builds it."""
    with DAG("orders", schedule=None, tags=tags) as orders:
        load = EmptyOperator(task_id="load", retries=3)
    dag_run = DagRun(
        dag_id=orders.dag_id,
        run_id=RUN_ID,
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_after=WHEN,
        start_date=WHEN,
        end_date=None,
        run_type="scheduled",
        state="running",
        consumed_asset_events=[],
        partition_key=None,
    )
    # task_runner.parse() builds the worker's task instance with model_construct as well.
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=load.task_id,
        dag_id=orders.dag_id,
        run_id=RUN_ID,
        try_number=try_number,
        map_index=map_index,
        dag_version_id=uuid.uuid4(),
        task=load,
        start_date=WHEN,
        state="running",
        max_tries=load.retries,
        _ti_context_from_server=TIRunContext(dag_run=dag_run, max_tries=load.retries),
    )
    context = ti.get_template_context()
    # task_runner.main() adds the error just before finalize() runs the callbacks.
    context["exception"] = error
    return context


def deadline_context() -> dict[str, Any]:
    """The context the scheduler gives a deadline callback (Deadline.handle_miss)."""
    dag_run = DAGRunResponse.model_validate(
        {
            "run_id": RUN_ID,
            "dag_id": "orders",
            "logical_date": WHEN,
            "queued_at": WHEN,
            "start_date": WHEN,
            "end_date": None,
            "duration": None,
            "data_interval_start": WHEN,
            "data_interval_end": WHEN,
            "run_after": WHEN,
            "last_scheduling_decision": None,
            "run_type": "scheduled",
            "state": "running",
            "triggered_by": None,
            "triggering_user_name": None,
            "conf": {},
            "note": None,
            "dag_versions": [],
            "bundle_version": None,
            "dag_model": {"dag_display_name": "orders"},
            "partition_key": None,
            "partition_date": None,
        }
    )
    deadline = {"id": str(uuid.uuid4()), "deadline_time": WHEN + timedelta(minutes=90)}
    return {"dag_run": dag_run.model_dump(mode="json"), "deadline": deadline}


def run_deadline_callback(path: str, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a deadline's callback through the trigger the triggerer runs it in; returns its events."""
    trigger = CallbackTrigger(path, {**kwargs, "context": deadline_context()})

    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())
