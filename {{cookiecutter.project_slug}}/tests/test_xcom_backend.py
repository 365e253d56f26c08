"""Large XComs go to object storage or fail their task naming the setting; they never land somewhere unreadable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from airflow.providers.common.io.xcom import backend as common_io
from airflow.sdk.exceptions import AirflowFailException

from {{ cookiecutter.project_slug }}.xcom_backend import ObjectStorageXComBackend, storage_path_problem

SMALL = {"rows": 3}
LARGE = [{"id": number, "payload": "x" * 32} for number in range(5_000)]
WHERE = {"key": "return_value", "dag_id": "d", "task_id": "t", "run_id": "r", "map_index": -1}


@dataclass
class StoredXCom:
    """What a reader gets back from the metadata DB."""

    value: Any


@pytest.fixture
def storage(monkeypatch, tmp_path):
    """Point [common.io] at a value for one test; the provider caches what it read."""

    def configure(path: str) -> None:
        monkeypatch.setenv("AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH", path)
        monkeypatch.setenv("AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD", "65536")
        for cached in (common_io._get_base_path, common_io._get_threshold, common_io._get_compression):
            cached.cache_clear()

    monkeypatch.chdir(tmp_path)
    yield configure
    for cached in (common_io._get_base_path, common_io._get_threshold, common_io._get_compression):
        cached.cache_clear()


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "it is not set"),
        ("   ", "it is not set"),
        ("xcom", "has no scheme"),
        ("/data/xcom", "has no scheme"),
        ("file://xcom", "is not an absolute path"),
        ("file:relative/xcom", "is not an absolute path"),
        ("s3:///xcom", "names no bucket"),
    ],
)
def test_paths_that_cannot_hold_xcoms_are_named(path, problem):
    assert problem in storage_path_problem(path)


@pytest.mark.parametrize("path", ["file:///opt/airflow/xcom", "file://localhost/xcom", "s3://bucket/xcom", "gs://b/x"])
def test_absolute_paths_can_hold_xcoms(path):
    assert storage_path_problem(path) is None


@pytest.mark.parametrize("path", ["", "xcom", "file://xcom"])
def test_a_large_value_without_a_usable_path_fails_naming_the_setting(storage, tmp_path, path):
    storage(path)

    with pytest.raises(AirflowFailException) as failure:
        ObjectStorageXComBackend.serialize_value(LARGE, **WHERE)

    message = str(failure.value)
    assert "[common.io] xcom_objectstorage_path" in message
    assert "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH" in message
    assert "The XCom 'return_value' of d.t is too large for the metadata DB" in message
    assert list(tmp_path.iterdir()) == [], "nothing may be written to the working directory"


def test_a_small_value_stays_in_the_db_without_a_path(storage, tmp_path):
    storage("")

    stored = ObjectStorageXComBackend.serialize_value(SMALL, **WHERE)

    assert stored == SMALL
    assert ObjectStorageXComBackend.deserialize_value(StoredXCom(stored)) == SMALL
    assert list(tmp_path.iterdir()) == []


def test_a_large_value_round_trips_through_the_configured_store(storage, tmp_path):
    store = tmp_path / "store"
    storage(f"file://{store}")

    stored = ObjectStorageXComBackend.serialize_value(LARGE, **WHERE)

    assert isinstance(stored, str) and stored.startswith(f"file://{store}/d/r/t/")
    assert ObjectStorageXComBackend.deserialize_value(StoredXCom(stored)) == LARGE
    assert [path.name for path in tmp_path.iterdir()] == ["store"]
