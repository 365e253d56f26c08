"""scripts/sync_pools.py: validation before any API call, and a plan that converges."""

import importlib.util
import json

import pytest

from conftest import POOLS_FILE, PROJECT_ROOT

spec = importlib.util.spec_from_file_location("sync_pools", PROJECT_ROOT / "scripts" / "sync_pools.py")
sync_pools = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync_pools)


def test_the_projects_pools_file_is_valid():
    pools = sync_pools.load_pools(POOLS_FILE)
    assert "default_pool" in pools and all(pool["slots"] > 0 for pool in pools.values())


@pytest.mark.parametrize(
    ("pools", "problem"),
    [
        ({"p": {"slots": "5"}}, "slots must be an integer"),
        ({"p": {"slots": -2}}, "slots must be an integer"),
        ({"p": {"slots": 1, "include_deferred": "yes"}}, "include_deferred"),
        ({"p": {"slots": 1, "slot": 2}}, "unknown fields ['slot']"),
        ([], "must be a JSON object"),
    ],
)
def test_invalid_files_are_refused_with_the_reason(tmp_path, pools, problem):
    path = tmp_path / "pools.json"
    path.write_text(json.dumps(pools))
    with pytest.raises(sync_pools.SyncError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        sync_pools.load_pools(path)


def test_plan_creates_updates_and_only_prunes_when_asked():
    desired = {"a": {"slots": 1, "description": "", "include_deferred": False}}
    existing = {
        "a": {"slots": 2, "description": "", "include_deferred": False},
        "old": {"slots": 1, "description": "", "include_deferred": False},
        "default_pool": {"slots": 128, "description": "", "include_deferred": False},
    }
    assert sync_pools.plan(desired, existing, prune=False) == [("update", "a", desired["a"])]
    assert sync_pools.plan(desired, existing, prune=True)[-1] == ("delete", "old", {})
    assert sync_pools.plan(desired, {"a": desired["a"]}, prune=True) == []


def test_missing_credentials_fail_before_any_request(tmp_path, capsys):
    assert sync_pools.main(["--dry-run"], environ={"AIRFLOW_API_URL": "http://127.0.0.1:9"}) == 1
    assert "AIRFLOW_API_USERNAME" in capsys.readouterr().err


def test_default_pool_is_only_compared_and_patched_on_the_fields_the_api_may_change():
    # Airflow's API refuses to change default_pool's description; a plan that tried would never converge.
    desired = {"default_pool": {"slots": 64, "description": "ours", "include_deferred": False}}
    existing = {"default_pool": {"slots": 64, "description": "Default pool", "include_deferred": False}}
    assert sync_pools.plan(desired, existing, prune=False) == []
    existing["default_pool"]["slots"] = 128
    changes = sync_pools.plan(desired, existing, prune=False)

    class RecordingApi:
        calls = []

        def request(self, method, path, body=None):
            self.calls.append((method, path))

    sync_pools.apply(RecordingApi(), changes)
    masked = "/api/v2/pools/default_pool?update_mask=slots&update_mask=include_deferred"
    assert RecordingApi.calls == [("PATCH", masked)]
