"""Airflow's metrics registry and its `metrics_allow_list` validator, read with the project's config.

Each declared name is tested bare and with an InfluxDB tag, as StatsD sends it.
Prints one JSON line: {"types": {name: type}, "allowed": {name: passes the allow-list}}.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from airflow._shared.observability.metrics import validators
from airflow.configuration import conf

registry = yaml.safe_load((Path(validators.__file__).parent / "metrics_template.yaml").read_text())["metrics"]
allow = validators.get_validator(conf.get("metrics", "metrics_allow_list"), None)
names = [metric["name"] for metric in registry if "{" not in metric["name"]]
# With several executors, Airflow appends the executor's class to executor.* names.
names += [name + ".CeleryExecutor" for name in names if name.startswith("executor.")]
print(
    json.dumps(
        {
            "types": {metric["name"]: metric["type"] for metric in registry},
            "allowed": {name: allow.test(name) and allow.test(name + ",dag_id=example") for name in names},
        }
    )
)
