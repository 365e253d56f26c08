"""scripts/sync_pools.py: validation before any API call, and a plan that converges against a local API."""

import json

import pytest

from conftest import POOLS_FILE
from scripts import sync_pools

from local_servers import Reply, Request, serve


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
    with pytest.raises(sync_pools.PoolsFileError, match=problem.replace("[", r"\[").replace("]", r"\]")):
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


class PoolsApi:
    """/api/v2/pools as Airflow serves it: pages of two, and default_pool's description fixed."""

    def __init__(self, pools: dict[str, dict]) -> None:
        self.pools = pools

    def __call__(self, request: Request) -> Reply:
        name = request.path.removeprefix("/api/v2/pools").strip("/")
        if request.method == "GET":
            offset, limit = int(request.query["offset"][0]), 2  # the server may cap the page below the limit
            page = [{"name": key, **value} for key, value in sorted(self.pools.items())][offset : offset + limit]
            return Reply(200, {"pools": page, "total_entries": len(self.pools)})
        if request.method == "DELETE":
            del self.pools[name]
            return Reply(204)
        if name == "default_pool" and sorted(request.query.get("update_mask", [])) != ["include_deferred", "slots"]:
            return Reply(400, {"detail": "Only slots and included_deferred can be modified on Default Pool"})
        settings = {key: value for key, value in request.json().items() if key != "name"}
        if request.method == "POST":
            self.pools[request.json()["name"]] = settings
            return Reply(201, {})
        fields = request.query.get("update_mask") or list(settings)
        self.pools[name].update({field: settings[field] for field in fields})
        return Reply(200, {})


def test_a_sync_converges_and_a_second_run_changes_nothing(tmp_path, capsys):
    pools_file = tmp_path / "pools.json"
    pools_file.write_text(json.dumps({"default_pool": {"slots": 64}, "etl": {"slots": 4, "description": "loads"}}))
    existing = {
        "default_pool": {"slots": 128, "description": "Default pool", "include_deferred": False},
        **{f"old{index}": {"slots": 1, "description": "", "include_deferred": False} for index in range(3)},
    }
    api = PoolsApi(existing)
    with serve(api) as server:
        environ = {"AIRFLOW_API_URL": server.url, "AIRFLOW_API_TOKEN": "t"}
        assert sync_pools.main(["--pools-file", str(pools_file), "--prune"], environ) == 0
        assert api.pools == {
            "default_pool": {"slots": 64, "description": "Default pool", "include_deferred": False},
            "etl": {"slots": 4, "description": "loads", "include_deferred": False},
        }
        capsys.readouterr()
        assert sync_pools.main(["--pools-file", str(pools_file), "--prune"], environ) == 0
    assert capsys.readouterr().out.strip() == "2 pools declared, 0 change(s)."


def test_default_pool_is_only_compared_on_the_fields_the_api_may_change():
    # Airflow's API refuses to change default_pool's description; a plan that tried would never converge.
    desired = {"default_pool": {"slots": 64, "description": "ours", "include_deferred": False}}
    existing = {"default_pool": {"slots": 64, "description": "Default pool", "include_deferred": False}}
    assert sync_pools.plan(desired, existing, prune=False) == []
