"""`make upgrade-check` and `make upgrade-fix` in a baked project, for real.

The project's own tests pin the exact static findings per fixture file. Here the Makefile targets
run with the project's pinned install: Airflow 3.3.2 imports every fixture DAG in its own process,
`airflow config lint` and `airflow config update` read the old airflow.cfg, and after
`make upgrade-fix` the fixed DAGs import under Airflow while every other file stays as it was.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import PROBES, airflow_env, last_json_line, project_venv, run

pytestmark = pytest.mark.airflow

FIXTURES = "tests/upgrade_fixtures/airflow2_repo"
STATUSES = {
    "dags/clean_classic.py": "clean",
    "dags/clean_taskflow.py": "clean",
    "dags/warehouse_load.py": "clean",
    "dags/sales_daily.py": "auto-fix",
    "dags/common/db_utils.py": "manual",
    "dags/finance_close.py": "manual",
    "dags/half_edited.py": "manual",
    "dags/legacy_modules.py": "manual",
    "dags/orders_cleanup.py": "manual",
    "dags/partner_feeds.py": "manual",
    "dags/slow_vendor_check.py": "manual",
    "plugins/operators/legacy_operator.py": "manual",
}
# DAG file -> its dag_ids when it imports under Airflow 3.3.2, else what its import error says.
IMPORTS = {
    "dags/clean_classic.py": ["clean_classic"],
    "dags/clean_taskflow.py": ["clean_taskflow"],
    "dags/warehouse_load.py": ["warehouse_load"],
    "dags/finance_close.py": ["finance_close"],  # SLAs and execution_date parse; they fail or vanish at runtime
    "dags/orders_cleanup.py": ["orders_cleanup"],
    "dags/common/db_utils.py": [],
    "dags/sales_daily.py": "ModuleNotFoundError: No module named 'airflow.operators.dummy'",
    "dags/partner_feeds.py": "ModuleNotFoundError: No module named 'airflow.contrib'",
    "dags/legacy_modules.py": "ImportError: cannot import name 'bash_operator' from 'airflow.operators'",
    "dags/slow_vendor_check.py": "DagBag import timeout for dags/slow_vendor_check.py after 30.0s",
}
SECRETS_IN_OLD_CFG = ("old-cfg-password", "old-webserver-secret")


def make(project: Path, venv: Path, target: str, *variables: str, check: bool = True):
    """The project's Makefile target, with the cached pinned venv standing in for .venv."""
    command = ["make", "--no-print-directory", "-C", str(project), target, *variables, f"VENV={venv}"]
    return run([*command, "-o", f"{venv}/.installed"], cwd=project, check=check, timeout=1800)


def snapshot(root: Path) -> dict[str, bytes]:
    files = (path for path in root.rglob("*") if path.is_file() and ".git" not in path.relative_to(root).parts)
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in files}


@pytest.fixture(scope="module")
def checked(baked, tmp_path_factory):
    project = baked("local").copy_to(tmp_path_factory.mktemp("upgrade-check"))
    venv = project_venv(project)
    fixtures_before = snapshot(project.path / FIXTURES)
    result = make(project.path, venv, "upgrade-check", f"SRC={FIXTURES}")
    report = json.loads((project.path / "upgrade-report" / "report.json").read_text())
    return project, venv, result, report, fixtures_before


def test_every_fixture_gets_its_status(checked):
    _, _, _, report, _ = checked
    assert {path: file["status"] for path, file in report["files"].items()} == STATUSES
    summary = report["summary"]
    assert (summary["files"], summary["dag_files"], summary["clean"], summary["auto-fix"], summary["manual"]) == (
        12,
        11,
        3,
        1,
        8,
    )


def test_every_dag_file_is_imported_by_airflow_with_its_own_result(checked):
    _, _, _, report, _ = checked
    imported = {path: file["parse"] for path, file in report["files"].items() if file["parse"]}
    assert set(imported) == set(IMPORTS)
    for path, expected in IMPORTS.items():
        parse = imported[path]
        if isinstance(expected, list):
            assert parse["ok"] and parse["dag_ids"] == expected, path
            assert parse["seconds"] >= 0
        else:
            assert not parse["ok"] and expected in parse["error"], (path, parse["error"])
    # The file that sleeps at import is cut off by the time limit; the other files still report.
    assert imported["dags/slow_vendor_check.py"]["timed_out"] is True
    assert report["files"]["dags/half_edited.py"]["parse"] is None, "not imported: it is not valid Python"
    assert report["files"]["plugins/operators/legacy_operator.py"]["parse"] is None, "not a DAG file"


def test_a_file_that_defeats_airflows_timeout_is_killed_and_the_rest_reported(checked, tmp_path):
    project, venv, _, _, _ = checked
    dags = tmp_path / "repo" / "dags"
    dags.mkdir(parents=True)
    shutil.copy(PROBES / "blocks_alarm.py", dags)
    shutil.copy(project.path / FIXTURES / "dags" / "clean_taskflow.py", dags)
    output = tmp_path / "report"
    make(project.path, venv, "upgrade-check", f"SRC={dags.parent}", f"ARGS=--timeout 20 --output {output}")
    files = json.loads((output / "report.json").read_text())["files"]
    assert files["dags/blocks_alarm.py"]["parse"]["timed_out"] is True
    assert files["dags/blocks_alarm.py"]["parse"]["error"] == "still importing after 20 s: killed"
    assert files["dags/clean_taskflow.py"]["parse"]["dag_ids"] == ["clean_taskflow"]


def test_a_file_is_auto_fixable_only_when_its_fixed_copy_imports(checked):
    _, _, _, report, _ = checked
    rules = {path: {finding["rule"] for finding in file["findings"]} for path, file in report["files"].items()}
    assert "import-error" in rules["dags/sales_daily.py"], "it fails today ..."
    assert report["files"]["dags/sales_daily.py"]["status"] == "auto-fix", "... and imports once fixed"
    assert "fix-not-converged" in rules["dags/legacy_modules.py"]


def test_summary_line_and_readme_agree(checked):
    project, _, result, report, _ = checked
    line = report["summary"]["line"]
    assert line == (
        "12 files: 3 parse clean on 3.3, 1 need only auto-fixes, 8 need manual work. Top blockers: "
        "metadata DB access from task code (2 files); removed context key (2 files); AIR304 `datetime.now()` "
        "(1 file); SLA (silently ignored) (1 file); SubDAG (1 file). To declare: 2 pools and 3 connections. "
        "airflow.cfg: 11 options to change."
    )
    assert result.stdout.rstrip().endswith(line)
    assert line in project.read("upgrade-report/report.md")
    assert line in project.read("docs/upgrading-from-airflow-2.md"), "the docs show the report on these fixtures"


def test_pools_and_connections_to_declare(checked):
    _, _, _, report, _ = checked
    assert report["undeclared_pools"] == {
        "dwh_writes": {"dags/warehouse_load.py": 18},
        "etl_heavy": {"dags/warehouse_load.py": 14},
    }
    assert report["undeclared_connections"] == {
        "crm_api": {"dags/warehouse_load.py": 17},
        "legacy_dwh": {"dags/warehouse_load.py": 18},
        "partner_sftp": {"dags/partner_feeds.py": 19},
    }


def test_old_config_is_linted_and_an_update_proposed_but_nothing_written(checked):
    project, _, _, report, fixtures_before = checked
    config = report["config"]
    assert config["error"] is None and config["path"] == f"{FIXTURES}/airflow.cfg"
    assert len(config["lint"]) == 11
    assert any("`max_threads` configuration parameter moved" in issue for issue in config["lint"])
    assert "[Recommended] Renamed 'scheduler/max_threads' to 'dag_processor/parsing_processes'." in config["changes"]
    executor_change = next(change for change in config["changes"] if "core/executor" in change)
    assert "Changes your value" in executor_change
    assert "+parsing_processes = 4" in config["diff"] and "-max_threads = 4" in config["diff"]
    assert " sql_alchemy_conn = <masked>" in config["diff"] and " secret_key = <masked>" in config["diff"]
    for secret in SECRETS_IN_OLD_CFG:
        assert secret not in project.read("upgrade-report/report.md")
        assert secret not in project.read("upgrade-report/report.json")
    assert snapshot(project.path / FIXTURES) == fixtures_before, "SRC is only read"


def test_upgrade_fix_makes_the_fixable_files_import_and_leaves_the_rest(checked, tmp_path):
    project, venv, _, _, _ = checked
    repo = Path(shutil.copytree(project.path / FIXTURES, tmp_path / "old-repo"))
    for command in (["init", "--quiet"], ["add", "--all"], ["commit", "--quiet", "--message", "Airflow 2 DAGs"]):
        run(["git", "-c", "user.name=Team", "-c", "user.email=team@example.com", *command], cwd=repo)
    before = snapshot(repo)
    result = make(project.path, venv, "upgrade-fix", f"SRC={repo}")
    assert "left unchanged: dags/legacy_modules.py: ruff's fixes do not converge" in result.stdout
    assert run(["git", "branch", "--show-current"], cwd=repo).stdout.strip() == "airflow3-safe-fixes"
    after = snapshot(repo)
    changed = sorted(name for name in before if after[name] != before[name])
    assert changed == ["dags/partner_feeds.py", "dags/sales_daily.py", "plugins/operators/legacy_operator.py"]
    env = airflow_env(project.path, venv, tmp_path / "airflow-home")
    probe = run(
        [str(venv / "bin" / "python"), str(PROBES / "dagbag_summary.py"), str(repo / "dags" / "sales_daily.py")],
        repo,
        env,
    )
    parsed = last_json_line(probe.stdout)
    assert (parsed["dag_ids"], parsed["import_errors"]) == (["sales_daily"], {})


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ([], "upgrade-check: SRC is not set: make upgrade-check SRC=path/to/your/airflow2/repo"),
        (["SRC=no/such/repo"], "upgrade-check: SRC=no/such/repo: no such file or folder"),
        ([f"SRC={FIXTURES}/airflow.cfg"], "not a Python file"),
        (["SRC=docs"], "no DAG files"),
    ],
)
def test_bad_input_through_make_is_one_clear_line(checked, variables, message, tmp_path):
    project, venv, _, _, _ = checked
    copy = project.copy_to(tmp_path)
    shutil.rmtree(copy.path / "upgrade-report")
    result = make(copy.path, venv, "upgrade-check", *variables, check=False)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (copy.path / "upgrade-report").exists()


def test_upgrade_fix_refuses_a_dirty_tree(checked, tmp_path):
    project, venv, _, _, _ = checked
    repo = Path(shutil.copytree(project.path / FIXTURES, tmp_path / "old-repo"))
    subprocess.run(["git", "init", "--quiet"], cwd=repo, check=True)
    result = make(project.path, venv, "upgrade-fix", f"SRC={repo}", check=False)
    assert result.returncode == 2 and "uncommitted changes" in result.stderr
    assert run(["git", "branch", "--list"], cwd=repo).stdout == ""
