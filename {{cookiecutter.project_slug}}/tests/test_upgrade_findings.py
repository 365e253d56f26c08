"""`make upgrade-check`'s static checks on the Airflow 2 fixtures: the exact findings per file.

Ruff and the syntax-tree checks run here; importing the DAGs under Airflow, the old airflow.cfg
and the whole report are tested by the template, which runs `make upgrade-check` for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.upgrade_check import check, references, sources
from scripts.upgrade_check.config import mask_secrets
from scripts.upgrade_check.model import Finding, UsageError
from scripts.upgrade_check.report import AUTO_FIX, CLEAN, MANUAL, FileReport, Report
from scripts.upgrade_check.templates import context_names

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "upgrade_fixtures" / "airflow2_repo"

# (line, rule, ruff's fix) for every finding, per file.
EXPECTED = {
    "dags/clean_classic.py": [],
    "dags/clean_taskflow.py": [],
    "dags/common/db_utils.py": [(7, "metadata-db", None), (13, "AIR311", "unsafe")],
    "dags/finance_close.py": [
        (14, "no-logical-date-fallback", None),
        (14, "removed-context-key", None),
        (15, "removed-context-key", None),
        (18, "AIR311", "unsafe"),
        (23, "AIR311", None),
        (23, "sla", None),
        (24, "sla", None),
        (27, "AIR312", "unsafe"),
        (29, "no-logical-date-fallback", None),
        (29, "removed-context-key", None),
        (30, "AIR311", None),
        (30, "sla", None),
        (32, "AIR312", "unsafe"),
        (33, "AIR312", "unsafe"),
    ],
    "dags/half_edited.py": [(5, "syntax-error", None)],
    "dags/legacy_modules.py": [(8, "AIR311", "unsafe"), (9, "AIR302", "safe")],
    "dags/orders_cleanup.py": [
        (13, "metadata-db", None),
        (14, "metadata-db", None),
        (18, "metadata-db", None),
        (19, "metadata-db", None),
        (22, "AIR311", "unsafe"),
        (25, "AIR304", None),
        (29, "AIR312", "unsafe"),
        (29, "AIR312", "unsafe"),
    ],
    "dags/partner_feeds.py": [
        (6, "airflow-contrib", None),
        (8, "subdag", None),
        (12, "AIR301", "safe"),
        (12, "AIR311", "unsafe"),
        (14, "AIR302", "safe"),
        (19, "AIR301", None),
        (22, "AIR311", "unsafe"),
        (24, "AIR301", "safe"),
        (29, "AIR301", None),
    ],
    "dags/sales_daily.py": [
        (15, "AIR311", "unsafe"),
        (17, "AIR301", "safe"),
        (23, "AIR302", "safe"),
        (24, "AIR312", "unsafe"),
        (25, "AIR312", "unsafe"),
    ],
    "dags/slow_vendor_check.py": [(9, "AIR311", "unsafe")],
    "dags/warehouse_load.py": [(9, "AIR311", "unsafe")],
    "plugins/operators/legacy_operator.py": [(10, "AIR301", "safe"), (16, "removed-context-key", None)],
}


@pytest.fixture(scope="module")
def gathered():
    return check.static_checks(sources.scan(FIXTURES))


def test_the_fixture_repository_is_found_as_airflow_finds_it():
    tree = sources.scan(FIXTURES)
    assert set(tree.python_files) == set(EXPECTED)
    # Airflow's safe-mode test: files in dags/ that mention both "airflow" and "dag".
    assert tree.dag_files == {name for name in EXPECTED if name.startswith("dags/")}
    assert tree.airflow_cfg == FIXTURES / "airflow.cfg"


def test_every_file_has_exactly_its_findings(gathered):
    found = {
        name: sorted((finding.line, finding.rule, finding.fix) for finding in file.findings)
        for name, file in gathered.files.items()
    }
    assert found == EXPECTED


def test_runtime_findings_say_what_to_do_instead(gathered):
    messages = {(f.path, f.line, f.rule): f.message for file in gathered.files.values() for f in file.findings}
    assert "`{{ ds }}` without a fallback" in messages["dags/finance_close.py", 29, "no-logical-date-fallback"]
    assert "`{{ next_ds_nodash }}`" in messages["dags/finance_close.py", 29, "removed-context-key"]
    assert "DeadlineAlert" in messages["dags/finance_close.py", 24, "sla"]
    assert "`create_session()`" in messages["dags/orders_cleanup.py", 13, "metadata-db"]
    assert "`TaskInstance` model" in messages["dags/orders_cleanup.py", 14, "metadata-db"]
    assert "TaskGroup" in messages["dags/partner_feeds.py", 8, "subdag"]
    # Blocking findings block; ruff's "still works" deprecations do not.
    blocking = {(f.rule, f.blocking) for file in gathered.files.values() for f in file.findings}
    assert ("AIR311", True) not in blocking and ("AIR312", True) not in blocking
    assert {("AIR301", True), ("AIR304", True), ("sla", True), ("metadata-db", True)} <= blocking


def test_pools_and_connections_the_code_names_against_this_project(gathered):
    pools = references.undeclared(gathered.pools, references.declared_pools(PROJECT_ROOT))
    assert pools == {"dwh_writes": {"dags/warehouse_load.py": 18}, "etl_heavy": {"dags/warehouse_load.py": 14}}
    # warehouse and external_api are this project's pools.
    assert {"warehouse", "external_api"} <= set(json.loads((PROJECT_ROOT / "config" / "pools.json").read_text()))
    assert gathered.connections == {
        "crm_api": {"dags/warehouse_load.py": 17},
        "legacy_dwh": {"dags/warehouse_load.py": 18},
        "partner_sftp": {"dags/partner_feeds.py": 19},
    }


def test_declared_connections_are_the_airflow_conn_names_of_the_env_files(tmp_path):
    (tmp_path / ".env.example").write_text("AIRFLOW_CONN_WAREHOUSE=\n# AIRFLOW_CONN_COMMENTED=x\nOTHER=1\n")
    (tmp_path / ".env").write_text("export AIRFLOW_CONN_CRM_API='http://example'\n")
    assert references.declared_connection_ids(tmp_path) == {"warehouse", "crm_api"}
    assert references.declared_connection_ids(tmp_path / "missing") == set()


@pytest.mark.parametrize(
    ("template", "unguarded"),
    [
        ("{{ ds }}", ["ds"]),
        ("{{ macros.ds_add(ds, 1) }}", ["ds"]),
        ("{{ data_interval_start }}-{{ params.ds }}", ["data_interval_start"]),
        # StrictUndefined fails on testing an undefined name, so `or` and a plain `if` are no fallback.
        ("{{ ds or dag_run.run_after }}", ["ds"]),
        ("{{ ts if logical_date else dag_run.run_after }}", ["logical_date", "ts"]),
        ("{{ ds | default(dag_run.run_after | ds) }}", []),
        ("{{ ts if logical_date is defined else dag_run.run_after }}", []),
        ("{% if ds is defined %}{{ ds }}{%endif%}", []),
        ("{{ dag_run.run_after | ds }}", []),
        ("{{ not valid jinja", []),
    ],
)
def test_template_names_need_a_fallback_that_strict_undefined_allows(template, unguarded):
    assert sorted(name.name for name in context_names(template) if not name.guarded) == unguarded


def test_removed_keys_are_found_in_templates_on_their_own_line():
    names = context_names("run {{ ds }}\n  --until {{ next_ds }}")
    assert [(name.name, name.line) for name in names] == [("ds", 1), ("next_ds", 2)]


def test_a_file_python_cannot_read_is_one_finding_and_the_rest_still_checks(tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "binary_dag.py").write_bytes(b"from airflow import DAG\x00\xff")
    (tmp_path / "dags" / "good_dag.py").write_text("from airflow.sdk import DAG\n\nDAG(dag_id='good', schedule=None)\n")
    gathered = check.static_checks(sources.scan(tmp_path))
    (problem,) = gathered.files["dags/binary_dag.py"].findings
    assert problem.rule == "syntax-error" and "null bytes" in problem.message
    assert gathered.files["dags/good_dag.py"].findings == []
    assert gathered.dag_files == ["dags/good_dag.py"]


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("no/such/repo", "no such file or folder"),
        ("README.md", "not a Python file"),
        ("plugins", "no DAG files"),
    ],
)
def test_bad_sources_are_refused_with_the_setting_named(src, message):
    with pytest.raises(UsageError, match=message) as refused:
        sources.scan(FIXTURES / src if src != "README.md" else FIXTURES.parent / src)
    assert "SRC=" in str(refused.value)


def file_report(path: str, status: str, *findings: tuple[str, str | None]) -> FileReport:
    """Findings named by their blocker; "import-error: ..." ones have that rule."""
    made = [
        Finding(path, 1, "code", blocker.partition(":")[0], blocker, True, blocker, fix) for blocker, fix in findings
    ]
    return FileReport(path, True, made, status=status)


def test_summary_counts_files_per_blocker_in_files_that_need_work():
    files = [
        file_report("a.py", MANUAL, ("subdag", None), ("subdag", None), ("AIR301", "safe")),
        # An import error is a symptom when another blocker explains the file, a blocker when none does.
        file_report("b.py", MANUAL, ("subdag", None), ("sla", None), ("import-error: No module 'x'", None)),
        file_report("c.py", MANUAL, ("import-error: No module 'x'", None)),
        file_report("d.py", AUTO_FIX, ("AIR301", "safe")),
        file_report("e.py", CLEAN),
        *[file_report(f"f{n}.py", MANUAL, (f"kind{n}", None)) for n in range(3)],
    ]
    report = Report("old", {}, files, {"etl": {"a.py": 3}}, {}, None)
    assert report.top_blockers() == [
        ("subdag", 2),
        ("import-error: No module 'x'", 1),
        ("kind0", 1),
        ("kind1", 1),
        ("kind2", 1),
    ]
    assert report.summary_line() == (
        "8 files: 1 parse clean on 3.3, 1 need only auto-fixes, 6 need manual work. Top blockers: subdag (2 files); "
        "import-error: No module 'x' (1 file); kind0 (1 file); kind1 (1 file); kind2 (1 file). To declare: 1 pool."
    )


def test_config_values_that_look_secret_are_masked():
    assert mask_secrets("+sql_alchemy_conn = postgresql://airflow:hunter2@db/airflow") == "+sql_alchemy_conn = <masked>"
    assert mask_secrets("-secret_key = abc") == "-secret_key = <masked>"
    assert mask_secrets(" # fernet_key = abc") == " # fernet_key = <masked>"
    assert mask_secrets("+broker_url = redis://:pw@redis:6379/0") == "+broker_url = <masked>"
    assert mask_secrets("+remote_base = s3://user:pw@bucket/logs") == "+remote_base = s3://user:<masked>@bucket/logs"
    assert mask_secrets("+parallelism = 64") == "+parallelism = 64"
