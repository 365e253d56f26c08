"""One DAG per tenant, built from a YAML list of tenants.

Each tenant gets `tenant_<name>`: one load task per enabled table, so a failed table is
retried on its own, then a join that reports what the run loaded. A broken entry fails
while the file parses, with an error naming the tenant and the field, so it shows up as an
import error of the DAG file and the DAG integrity test stops it before it ships.

The dag-processor re-runs the DAG file every 30 seconds, so everything here is built for
parse speed: the YAML is read once, schedules are checked once per distinct expression, and
nothing per tenant is copied or looked up. 500 tenants of 3 tables parse in about half a
second (benchmarks/tenant_parse_time.py in the template repository).
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pendulum
import yaml
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, CronTriggerTimetable, TriggerRule
from airflow.sdk.exceptions import AirflowSkipException, AirflowTimetableInvalid

from .dag_defaults import default_args
from .run_dates import run_date

# Names end up in dag_ids, task_ids and tags, so they stay short and plain.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
OWNER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}\Z")
TENANT_FIELDS = ("name", "owner", "schedule", "tables")
TABLE_FIELDS = ("name", "enabled")
# yaml.safe_load's loader, in C when PyYAML has libyaml: 6 times faster on 500 tenants.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Fixed, so a tenant added later gets the same schedule origin as the others.
START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")


@dataclass(frozen=True)
class Tenant:
    name: str
    owner: str
    schedule: str
    tables: tuple[str, ...]
    disabled_tables: tuple[str, ...] = ()

    @property
    def dag_id(self) -> str:
        return f"tenant_{self.name}"


@dataclass(frozen=True)
class TenantProblem:
    tenant: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"tenant {self.tenant}, field {self.field!r}: {self.message}"


class InvalidTenantConfig(ValueError):
    """The tenants file holds entries that cannot become DAGs; each problem names its tenant and field."""

    def __init__(self, source: str, problems: list[TenantProblem]) -> None:
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{source} has tenant entries that cannot become DAGs:\n{lines}")
        self.problems = problems


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def build_tenant_dags(path: Path) -> list[DAG]:
    """Read the tenants file once and build every tenant's DAG."""
    return [build_tenant_dag(tenant) for tenant in load_tenants(path)]


def load_tenants(path: Path) -> list[Tenant]:
    return parse_tenants(yaml.load(path.read_text(), Loader=SAFE_LOADER), source=str(path))


def parse_tenants(document: object, source: str = "tenants.yaml") -> list[Tenant]:
    """Check the loaded YAML and return its tenants; raise InvalidTenantConfig listing every bad entry."""
    if not isinstance(document, Mapping) or not isinstance(document.get("tenants"), list):
        raise InvalidTenantConfig(source, [TenantProblem("(none)", "tenants", "the file needs a 'tenants:' list")])
    tenants: list[Tenant] = []
    problems: list[TenantProblem] = []
    index_by_name: dict[str, int] = {}
    for index, entry in enumerate(document["tenants"]):
        try:
            tenant = _parse_tenant(entry)
            if tenant.name in index_by_name:
                raise _FieldError("name", f"duplicate of tenants[{index_by_name[tenant.name]}]")
        except _FieldError as error:
            problems.append(TenantProblem(_describe(index, entry), error.field, error.message))
            continue
        index_by_name[tenant.name] = index
        tenants.append(tenant)
    if problems:
        raise InvalidTenantConfig(source, problems)
    return tenants


def _describe(index: int, entry: object) -> str:
    name = entry.get("name") if isinstance(entry, Mapping) else None
    return f"{name!r} (tenants[{index}])" if name is not None else f"tenants[{index}]"


def _parse_tenant(entry: object) -> Tenant:
    if not isinstance(entry, Mapping):
        raise _FieldError("(entry)", f"must be a mapping with {', '.join(TENANT_FIELDS)}")
    _reject_unknown_fields(entry, TENANT_FIELDS)
    name = _required_string(entry, "name")
    if not NAME_PATTERN.match(name):
        raise _FieldError("name", f"{name!r} must start with a-z and use only a-z, 0-9 and _ (at most 64)")
    owner = _required_string(entry, "owner")
    if not OWNER_PATTERN.match(owner):
        raise _FieldError("owner", f"{owner!r} must be 1-64 letters, digits, spaces, '.', '_' or '-'")
    schedule = _required_string(entry, "schedule")
    if error := schedule_error(schedule):
        raise _FieldError("schedule", f"{schedule!r} is not a cron expression or a preset such as @daily: {error}")
    enabled, disabled = _parse_tables(entry.get("tables"))
    return Tenant(name=name, owner=owner, schedule=schedule, tables=enabled, disabled_tables=disabled)


def _reject_unknown_fields(entry: Mapping, known: tuple[str, ...], prefix: str = "") -> None:
    # A typo such as `enabeld: false` would otherwise be ignored and load the table anyway.
    for field in entry:
        if field not in known:
            raise _FieldError(f"{prefix}{field}", f"unknown field; expected one of {', '.join(known)}")


def _required_string(entry: Mapping, field: str) -> str:
    value = entry.get(field)
    if value is None:
        raise _FieldError(field, "is missing")
    if not isinstance(value, str) or not value.strip():
        raise _FieldError(field, f"must be a non-empty string, got {value!r}")
    return value


@functools.cache
def schedule_error(schedule: str) -> str | None:
    """Why Airflow would reject this schedule, or None. Cached: tenants share a handful of schedules."""
    try:
        CronTriggerTimetable(schedule, timezone="UTC").validate()
    except AirflowTimetableInvalid as error:
        return str(error)
    return None


def _parse_tables(tables: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not isinstance(tables, list) or not tables:
        raise _FieldError("tables", "must be a non-empty list of table names or mappings with name and enabled")
    enabled: list[str] = []
    disabled: list[str] = []
    for index, table in enumerate(tables):
        field = f"tables[{index}]"
        if isinstance(table, str):
            table = {"name": table}
        if not isinstance(table, Mapping):
            raise _FieldError(field, f"must be a table name or a mapping with name and enabled, got {table!r}")
        _reject_unknown_fields(table, TABLE_FIELDS, prefix=f"{field}.")
        name = table.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise _FieldError(f"{field}.name", f"{name!r} must start with a-z and use only a-z, 0-9 and _")
        if name in enabled or name in disabled:
            raise _FieldError(f"{field}.name", f"{name!r} is listed twice")
        is_enabled = table.get("enabled", True)
        if not isinstance(is_enabled, bool):
            raise _FieldError(f"{field}.enabled", f"must be true or false, got {is_enabled!r}")
        (enabled if is_enabled else disabled).append(name)
    if not enabled:
        raise _FieldError("tables", "every table is disabled; remove the tenant or pause its DAG instead")
    return tuple(enabled), tuple(disabled)


def build_tenant_dag(tenant: Tenant) -> DAG:
    # PythonOperator rather than @task: TaskFlow's per-task signature binding and override copies
    # cost about twice as much at parse time, which at 2,000 tasks is the difference between
    # half a second and a whole one.
    with DAG(
        dag_id=tenant.dag_id,
        schedule=tenant.schedule,
        start_date=START_DATE,
        catchup=False,
        default_args=default_args(owner=tenant.owner),
        tags=["tenant", tenant.name],
        description=describe(tenant),
    ) as dag:
        loads = {
            table: PythonOperator(
                task_id=f"load_{table}",
                python_callable=load_table,
                op_kwargs={"tenant": tenant.name, "table": table},
                # Every tenant loads into the same warehouse: the pool caps concurrent loads
                # across all tenant DAGs below its connection limit.
                pool="warehouse",
            )
            for table in tenant.tables
        }
        row_counts = {table: load.output for table, load in loads.items()}
        PythonOperator(
            task_id="report_loads",
            python_callable=report_loads,
            op_kwargs={"tenant": tenant.name, "row_counts": row_counts},
            # Skipped tables must not stop the report (all_success would skip it too), a failed
            # one must (all_done would not). Of the skip-tolerant rules, none_failed would also
            # report a run where every table was skipped; none_failed_min_one_success skips the
            # report then, since a run that loaded nothing has no load to report as done.
            trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        )
    return dag


def describe(tenant: Tenant) -> str:
    disabled = f"; disabled: {', '.join(tenant.disabled_tables)}" if tenant.disabled_tables else ""
    return f"Loads {', '.join(tenant.tables)} for tenant {tenant.name}{disabled}"


def load_table(tenant: str, table: str, dag_run: Any) -> int:
    """Load one table for the day the run is for; skipped when the run's conf lists it in skip_tables.

    skip_tables is read from the conf instead of being declared as a DAG Param: Airflow checks
    every DAG's Params against their JSON schema while parsing, which at 500 tenants alone
    nearly doubles the parse time.
    """
    skip_tables = (dag_run.conf or {}).get("skip_tables", ())
    if table in skip_tables:
        raise AirflowSkipException(f"{table} is in this run's skip_tables")
    # The logical date, or run_after for a run triggered without one.
    day = run_date(dag_run).date().isoformat()
    rows = sample_row_count(tenant, table, day)
    print(f"loaded {rows} rows into {tenant}.{table} for {day}")
    return rows


def report_loads(tenant: str, row_counts: Mapping[str, int | None]) -> dict[str, Any]:
    summary = summarize_loads(row_counts)
    print(f"{tenant}: {summary['rows']} rows from {sorted(summary['loaded'])}; skipped {summary['skipped']}")
    return summary


def sample_row_count(tenant: str, table: str, day: str) -> int:
    """Stands in for the real extract and load: local and deterministic, so `airflow dags test` runs anywhere."""
    return zlib.crc32(f"{tenant}/{table}/{day}".encode()) % 10_000


def summarize_loads(row_counts: Mapping[str, int | None]) -> dict[str, Any]:
    """A skipped load leaves no XCom, which reaches the join as None."""
    loaded = {table: rows for table, rows in row_counts.items() if rows is not None}
    skipped = sorted(table for table, rows in row_counts.items() if rows is None)
    return {"loaded": loaded, "skipped": skipped, "rows": sum(loaded.values())}
