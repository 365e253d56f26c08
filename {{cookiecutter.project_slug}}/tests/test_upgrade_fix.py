"""`make upgrade-fix`: ruff's safe fixes only, checked, and never in place without a clean git tree.

That the fixed DAG files then import under Airflow 3.3 is tested by the template, which runs
`make upgrade-fix` and parses the result for real.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.upgrade_check import cli, lint, workspace
from scripts.upgrade_check.fixes import apply_safe_fixes
from scripts.upgrade_check.model import UsageError

FIXTURES = Path(__file__).parent / "upgrade_fixtures" / "airflow2_repo"
# Files with a safe fix that works; legacy_modules.py has one that never converges.
FIXED = ["dags/partner_feeds.py", "dags/sales_daily.py", "plugins/operators/legacy_operator.py"]


def python_files(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*.py"))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes, git's own files aside."""
    files = (path for path in root.rglob("*") if path.is_file() and ".git" not in path.relative_to(root).parts)
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in files}


@pytest.fixture
def old_repo(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURES, tmp_path / "old_repo"))


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def git_repo(old_repo) -> Path:
    git(old_repo, "init", "--quiet", "--initial-branch", "main")
    git(old_repo, "add", "--all")
    git(old_repo, "-c", "user.name=Team", "-c", "user.email=team@example.com", "commit", "--quiet", "-m", "Airflow 2")
    git(old_repo, "config", "user.name", "Team")
    git(old_repo, "config", "user.email", "team@example.com")
    return old_repo


def test_safe_fixes_change_only_what_ruff_fixes_and_name_what_does_not_converge(old_repo):
    before = snapshot(old_repo)
    outcome = apply_safe_fixes(old_repo, python_files(old_repo))
    after = snapshot(old_repo)
    assert outcome.changed == FIXED
    assert outcome.not_converged == ["dags/legacy_modules.py"]
    assert outcome.invalid == []
    assert {name for name in before if before[name] != after[name]} == set(FIXED)
    for name in FIXED:
        compile(after[name], name, "exec")
    # No safe fix is left, and the moved names' old imports are gone with their uses.
    remaining = [item["fix"]["applicability"] for item in lint.ruff_json(old_repo, FIXED) if item["fix"]]
    assert remaining and set(remaining) == {"unsafe"}
    sales = after["dags/sales_daily.py"].decode()
    assert "airflow.operators.dummy" not in sales and "schedule_interval" not in sales
    assert "from airflow.providers.standard.operators.empty import EmptyOperator" in sales
    assert "from airflow.operators.bash import BashOperator" in sales, "unsafe fixes are left alone"


def test_a_fix_that_makes_invalid_python_is_undone(tmp_path):
    dag = tmp_path / "two_schedules.py"
    source = "from airflow import DAG\n\nDAG('x', schedule_interval=None, timetable=None)\n"
    dag.write_text(source)
    outcome = apply_safe_fixes(tmp_path, ["two_schedules.py"])
    assert outcome.invalid == ["two_schedules.py"] and outcome.changed == []
    assert dag.read_text() == source


def test_fix_on_a_clean_repository_commits_to_a_new_branch(git_repo, capsys):
    original = snapshot(git_repo)
    assert cli.main(["fix", "--src", str(git_repo)]) == 0
    out = capsys.readouterr().out
    assert git(git_repo, "branch", "--show-current").strip() == "airflow3-safe-fixes"
    assert git(git_repo, "status", "--porcelain") == ""
    assert sorted(git(git_repo, "diff", "--name-only", "main", "HEAD").split()) == FIXED
    assert '-    schedule_interval="@daily",' in out and '+    schedule="@daily",' in out
    assert "left unchanged: dags/legacy_modules.py: ruff's fixes do not converge" in out
    git(git_repo, "switch", "--quiet", "main")
    assert snapshot(git_repo) == original, "the original branch is untouched"


def test_fix_refuses_a_repository_with_uncommitted_changes(git_repo):
    (git_repo / "dags" / "sales_daily.py").write_text("# work in progress\n", encoding="utf-8")
    before = snapshot(git_repo)
    with pytest.raises(UsageError, match="uncommitted changes"):
        workspace.fix(git_repo, None, "airflow3-safe-fixes")
    assert snapshot(git_repo) == before
    assert git(git_repo, "branch", "--list").split() == ["*", "main"]


def test_fix_refuses_an_existing_branch(git_repo):
    git(git_repo, "branch", "airflow3-safe-fixes")
    with pytest.raises(UsageError, match="already exists"):
        workspace.fix(git_repo, None, "airflow3-safe-fixes")
    assert git(git_repo, "branch", "--show-current").strip() == "main"


def test_fix_outside_git_writes_a_copy_and_leaves_the_original(old_repo, capsys):
    before = snapshot(old_repo)
    assert cli.main(["fix", "--src", str(old_repo)]) == 0
    copy = old_repo.with_name("old_repo-airflow3-fixes")
    assert snapshot(old_repo) == before
    fixed = snapshot(copy)
    assert sorted(name for name in fixed if fixed[name] != before[name]) == FIXED
    assert "+++ b/dags/sales_daily.py" in capsys.readouterr().out
    with pytest.raises(UsageError, match="already exists"):
        workspace.fix(old_repo, copy, "airflow3-safe-fixes")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["check", "--src", ""], "SRC is not set: make upgrade-check SRC="),
        (["check", "--src", "no/such/repo"], "SRC=no/such/repo: no such file or folder"),
        (["check", "--src", str(FIXTURES / "airflow.cfg")], "not a Python file"),
        (["check", "--src", str(FIXTURES / "plugins")], "no DAG files"),
        (["check", "--src", str(FIXTURES), "--airflow-cfg", "missing.cfg"], "CFG=missing.cfg: no such file"),
        (["fix", "--src", ""], "SRC is not set: make upgrade-fix SRC="),
    ],
)
def test_bad_input_gets_one_clear_line_and_exit_2(arguments, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(arguments) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert list(tmp_path.iterdir()) == [], "nothing is written"
