"""The XCom backend: common-io's object-storage backend, refusing to write where it must not.

``[core] xcom_backend`` names ObjectStorageXComBackend. Values under ``[common.io]
xcom_objectstorage_threshold`` stay in the metadata DB as usual; larger ones go to ``[common.io]
xcom_objectstorage_path`` and only their path is kept in the DB.

The stock backend takes an unset path as the current directory: it writes there, and a reader
in another process (another directory) gets the path string back instead of the value. Silent
wrong data, so this backend fails the producing task instead, naming the setting, when the path
is unset or relative. The path must be absolute: ``file:///...`` on shared storage, or a bucket
(``s3://``, ``gs://``, ...).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.common.io.xcom.backend import XComObjectStorageBackend
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException
from airflow.utils.json import XComEncoder

SECTION = "common.io"
SETTING = f"[{SECTION}] xcom_objectstorage_path"
ENV_VAR = "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"


class XComStorageNotConfigured(AirflowFailException):
    """A value is too large for the DB, and there is nowhere safe to put it. Retrying cannot help."""


def storage_path_problem(path: str) -> str | None:
    """Why ``path`` cannot hold XComs, or None if it can."""
    if not path.strip():
        return "it is not set"
    parts = urlsplit(path)
    if not parts.scheme:
        return f"{path!r} has no scheme (write file:///absolute/path, s3://bucket/prefix, ...)"
    if parts.scheme == "file" and (parts.netloc not in ("", "localhost") or not parts.path.startswith("/")):
        return f"{path!r} is not an absolute path (file:///absolute/path has three slashes)"
    if parts.scheme != "file" and not parts.netloc:
        return f"{path!r} names no bucket or host"
    return None


def _is_large(value: Any) -> bool:
    threshold = conf.getint(SECTION, "xcom_objectstorage_threshold", fallback=-1)
    return threshold >= 0 and len(json.dumps(value, cls=XComEncoder).encode()) >= threshold


class ObjectStorageXComBackend(XComObjectStorageBackend):
    """XComObjectStorageBackend that fails, naming the setting, rather than write a large value nowhere safe."""

    @staticmethod
    def serialize_value(
        value: Any,
        *,
        key: str | None = None,
        task_id: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        map_index: int | None = None,
    ) -> bytes | str:
        if _is_large(value):
            path = conf.get(SECTION, "xcom_objectstorage_path", fallback="") or ""
            if problem := storage_path_problem(path):
                raise XComStorageNotConfigured(
                    f"The XCom {key!r} of {dag_id}.{task_id} is too large for the metadata DB and {SETTING} "
                    f"cannot hold it: {problem}. Set {ENV_VAR} (or {SETTING} in airflow.cfg) to shared "
                    "storage every Airflow process reaches, e.g. file:///opt/airflow/xcom or s3://bucket/xcom."
                )
        return XComObjectStorageBackend.serialize_value(
            value, key=key, task_id=task_id, dag_id=dag_id, run_id=run_id, map_index=map_index
        )
