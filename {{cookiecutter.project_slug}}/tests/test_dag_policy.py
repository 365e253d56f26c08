"""House rules every DAG in this project follows; each failure names the DAG and the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import DAGS_FOLDER

# The field guide's hard limit is 5 s per file; a file that needs a tenth of that already
# does too much at parse time.
PARSE_BUDGET_SECONDS = 0.5


def test_every_dag_has_owner_retries_and_tags(dag_bag):
    problems = []
    for dag_id, dag in sorted(dag_bag.dags.items()):
        if not dag.default_args.get("owner"):
            problems.append(f"{dag_id}: default_args has no owner")
        if not dag.default_args.get("retries"):
            problems.append(f"{dag_id}: default_args sets no retries")
        if not dag.tags:
            problems.append(f"{dag_id}: no tags")
    assert not problems, "\n".join(problems)


def test_every_dag_sets_catchup_explicitly(dag_bag):
    # A DAG that sets catchup keeps its value when the global default flips; one that
    # relies on [scheduler] catchup_by_default follows it.
    probe = textwrap.dedent(
        """
        import json, sys
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder=sys.argv[1])
        print(json.dumps({dag_id: dag.catchup for dag_id, dag in bag.dags.items()}))
        """
    )
    from airflow.configuration import conf

    flipped_default = str(not conf.getboolean("scheduler", "catchup_by_default"))
    env = {**os.environ, "AIRFLOW__SCHEDULER__CATCHUP_BY_DEFAULT": flipped_default}
    result = subprocess.run(
        [sys.executable, "-c", probe, str(DAGS_FOLDER)], env=env, capture_output=True, text=True, check=True
    )
    flipped = json.loads(result.stdout.strip().splitlines()[-1])
    implicit = sorted(
        dag_id for dag_id, dag in dag_bag.dags.items() if dag_id in flipped and flipped[dag_id] != dag.catchup
    )
    assert not implicit, f"set catchup=True or catchup=False explicitly on: {implicit}"


def test_every_pool_is_declared_in_pools_json(dag_bag):
    warnings = sorted(warning.message for warning in dag_bag.dag_warnings)
    assert not warnings, "declare these pools in config/pools.json:\n" + "\n".join(warnings)


def test_every_executor_named_is_configured(dag_bag):
    unknown = sorted(
        f"{path}: {error}" for path, error in dag_bag.import_errors.items() if "UnknownExecutorException" in error
    )
    assert not unknown, "add the executor to [core] executor in config/airflow.cfg:\n" + "\n".join(unknown)


def test_no_dag_file_reads_config_or_network_at_parse_time(dag_bag):
    offenders = sorted(
        f"{path}: {error.strip().splitlines()[-1]}"
        for path, error in dag_bag.import_errors.items()
        if "ParseTimeAccessError" in error
    )
    assert not offenders, "\n".join(offenders)


def test_every_dag_file_parses_within_budget(dag_bag):
    slow = sorted(
        f"{stat.file}: {stat.duration.total_seconds():.2f} s"
        for stat in dag_bag.dagbag_stats
        if stat.duration.total_seconds() > PARSE_BUDGET_SECONDS
    )
    assert not slow, f"over the {PARSE_BUDGET_SECONDS} s parse budget (move slow work into tasks): {slow}"
