"""The tenant DAG factory: what each tenant's DAG holds, and how a bad tenants.yaml fails."""

from __future__ import annotations

import runpy
import shutil
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from airflow.sdk import TriggerRule
from airflow.sdk.exceptions import AirflowSkipException

from {{ cookiecutter.project_slug }}.dag_defaults import default_args
from {{ cookiecutter.project_slug }}.tenant_pipelines import (
    InvalidTenantConfig,
    build_tenant_dag,
    build_tenant_dags,
    load_table,
    load_tenants,
    parse_tenants,
    summarize_loads,
)

# Not imported from conftest: where it sorts among first-party imports depends on the project name.
DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"
TENANTS_FILE = DAGS_FOLDER / "config" / "tenants.yaml"
DAY = datetime(2026, 1, 2, tzinfo=UTC)
DAG_FILE = DAGS_FOLDER / "tenant_pipelines.py"

TWO_TENANTS = """
tenants:
  - name: acme
    owner: team-acme
    schedule: "@daily"
    tables: [orders, customers]
  - name: globex
    owner: team-globex
    schedule: "0 3 * * *"
    tables:
      - orders
      - name: returns
        enabled: false
      - name: shipments
        enabled: true
"""


def build(text: str) -> dict:
    return {dag.dag_id: dag for dag in map(build_tenant_dag, parse_tenants(yaml.safe_load(text)))}


def problems_of(document: dict) -> list[tuple[str, str]]:
    with pytest.raises(InvalidTenantConfig) as raised:
        parse_tenants(document)
    return [(problem.tenant, problem.field) for problem in raised.value.problems]


def tenant(**fields) -> dict:
    return {"name": "acme", "owner": "team-acme", "schedule": "@daily", "tables": ["orders"], **fields}


def test_one_dag_per_tenant_with_its_schedule_owner_and_tags():
    dags = build(TWO_TENANTS)

    assert sorted(dags) == ["tenant_acme", "tenant_globex"]
    assert dags["tenant_acme"].schedule == "@daily"
    assert dags["tenant_globex"].schedule == "0 3 * * *"
    assert dags["tenant_globex"].timetable.expression == "0 3 * * *"
    assert {task.owner for task in dags["tenant_acme"].tasks} == {"team-acme"}
    assert dags["tenant_globex"].owner == "team-globex"
    assert set(dags["tenant_globex"].tags) == {"tenant", "globex"}
    assert dags["tenant_acme"].catchup is False


def test_the_tenant_owner_overrides_only_the_owner_of_the_defaults():
    dag = build(TWO_TENANTS)["tenant_acme"]

    assert dag.default_args == default_args(owner="team-acme")
    assert dag.default_args["retries"] == default_args()["retries"]


def test_one_load_task_per_enabled_table_then_a_join_that_tolerates_skips():
    dag = build(TWO_TENANTS)["tenant_globex"]

    assert sorted(dag.task_ids) == ["load_orders", "load_shipments", "report_loads"]
    join = dag.get_task("report_loads")
    assert join.upstream_task_ids == {"load_orders", "load_shipments"}
    assert join.trigger_rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    assert {dag.get_task(task_id).pool for task_id in ("load_orders", "load_shipments")} == {"warehouse"}


def test_disabled_tables_are_kept_on_the_tenant_but_get_no_task():
    globex = parse_tenants(yaml.safe_load(TWO_TENANTS))[1]

    assert globex.tables == ("orders", "shipments")
    assert globex.disabled_tables == ("returns",)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        pytest.param({k: v for k, v in tenant().items() if k != "schedule"}, "schedule", id="missing schedule"),
        pytest.param(tenant(schedule="every day"), "schedule", id="invalid cron"),
        pytest.param(tenant(owner=None), "owner", id="missing owner"),
        pytest.param(tenant(tables=[]), "tables", id="empty tables"),
        pytest.param(tenant(tables="orders"), "tables", id="tables not a list"),
        pytest.param(tenant(tables=[{"name": "orders", "enabled": False}]), "tables", id="every table disabled"),
        pytest.param(tenant(tables=["orders", "orders"]), "tables[1].name", id="duplicate table"),
        pytest.param(tenant(tables=["Orders!"]), "tables[0].name", id="bad table name"),
        pytest.param(tenant(tables=[{"name": "orders", "enabled": "no"}]), "tables[0].enabled", id="enabled not bool"),
        pytest.param(tenant(tables=[{"name": "orders", "enabeld": False}]), "tables[0].enabeld", id="table typo"),
        pytest.param(tenant(scedule="@daily"), "scedule", id="tenant typo"),
    ],
)
def test_a_malformed_tenant_is_named_with_the_field(entry, field):
    assert problems_of({"tenants": [tenant(name="globex"), entry]}) == [(f"{entry['name']!r} (tenants[1])", field)]


def test_bad_name_characters_name_the_tenant_and_the_name_field():
    with pytest.raises(InvalidTenantConfig) as raised:
        parse_tenants({"tenants": [tenant(name="Acme Corp!")]})

    assert "tenant 'Acme Corp!' (tenants[0]), field 'name'" in str(raised.value)


def test_a_duplicate_name_points_at_the_first_one():
    with pytest.raises(InvalidTenantConfig) as raised:
        parse_tenants({"tenants": [tenant(), tenant(name="globex"), tenant(owner="someone-else")]})

    assert [(p.tenant, p.field, p.message) for p in raised.value.problems] == [
        ("'acme' (tenants[2])", "name", "duplicate of tenants[0]")
    ]


def test_every_bad_entry_is_reported_at_once():
    document = {"tenants": [tenant(schedule=None), tenant(name="ok"), "not a mapping", {"owner": "team-x"}]}

    assert problems_of(document) == [
        ("'acme' (tenants[0])", "schedule"),
        ("tenants[2]", "(entry)"),
        ("tenants[3]", "name"),
    ]


@pytest.mark.parametrize("document", [None, [], {"tenant": []}, {"tenants": None}])
def test_a_file_without_a_tenants_list_is_rejected(document):
    assert problems_of(document) == [("(none)", "tenants")]


def test_the_shipped_tenants_file_builds():
    dags = build_tenant_dags(TENANTS_FILE)

    assert dags, "tenants.yaml lists no tenants"
    assert all(dag.dag_id.startswith("tenant_") for dag in dags)


def test_the_dag_bag_holds_every_tenant_in_tenants_yaml(dag_bag):
    assert str(DAG_FILE) not in dag_bag.import_errors, dag_bag.import_errors.get(str(DAG_FILE))
    for expected in load_tenants(TENANTS_FILE):
        dag = dag_bag.dags.get(expected.dag_id)
        assert dag is not None, f"{expected.dag_id} missing from the DagBag"
        assert dag.fileloc == str(DAG_FILE)
        assert sorted(dag.task_ids) == sorted([f"load_{table}" for table in expected.tables] + ["report_loads"])


def test_the_dag_file_exposes_each_dag_under_its_dag_id():
    namespace = runpy.run_path(str(DAG_FILE))

    for expected in load_tenants(TENANTS_FILE):
        assert namespace[expected.dag_id].dag_id == expected.dag_id


def test_a_malformed_tenant_becomes_an_import_error_of_the_dag_file(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    shutil.copy(DAG_FILE, tmp_path / DAG_FILE.name)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "tenants.yaml").write_text(
        textwrap.dedent(
            """
            tenants:
              - name: broken
                owner: team-broken
                tables: [orders]
            """
        )
    )

    bag = DagBag(dag_folder=tmp_path)

    error = bag.import_errors[str(tmp_path / DAG_FILE.name)]
    assert "tenant 'broken' (tenants[0]), field 'schedule': is missing" in error
    assert not bag.dags


def test_the_dag_processor_parses_the_dag_file_but_not_the_yaml():
    # What the dag-processor lists in a bundle, with the default safe mode on.
    from airflow.utils.file import list_py_file_paths

    listed = list_py_file_paths(DAGS_FOLDER, safe_mode=True)

    assert str(DAG_FILE) in listed
    assert not [path for path in listed if not path.endswith(".py")]


def run(conf: dict, logical_date: datetime | None = DAY) -> SimpleNamespace:
    return SimpleNamespace(conf=conf, logical_date=logical_date, run_after=DAY + timedelta(hours=9))


def test_a_table_in_skip_tables_is_skipped_and_the_others_load():
    skipping = run({"skip_tables": ["orders"]})

    with pytest.raises(AirflowSkipException, match="orders"):
        load_table("acme", "orders", dag_run=skipping)
    rows = load_table("acme", "customers", dag_run=skipping)

    assert rows == load_table("acme", "customers", dag_run=run({}))
    assert isinstance(rows, int)


def test_a_run_without_a_logical_date_loads_the_day_it_was_due(capsys):
    rows = load_table("acme", "orders", dag_run=run({}, logical_date=None))

    assert rows == load_table("acme", "orders", dag_run=run({}))
    assert "for 2026-01-02" in capsys.readouterr().out


def test_the_report_separates_loaded_from_skipped_tables():
    summary = summarize_loads({"orders": None, "customers": 120, "invoices": 0})

    assert summary == {"loaded": {"customers": 120, "invoices": 0}, "skipped": ["orders"], "rows": 120}
