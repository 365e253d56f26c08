"""Tenant pipelines: one DAG per tenant in config/tenants.yaml, named tenant_<name>.

The file only reads that YAML and builds the DAGs; the logic and the checks live in
plugins/{{ cookiecutter.project_slug }}/tenant_pipelines.py. A malformed tenant fails this
file's import with an error naming the tenant and the field.

Keep the words "airflow" and "dag" in this file: with [core] dag_discovery_safe_mode on, the
dag-processor skips any .py file that lacks them. It parses only .py and .zip files, so
config/tenants.yaml ships in the DAG bundle without being parsed itself.
"""

from __future__ import annotations

from pathlib import Path

from {{ cookiecutter.project_slug }}.tenant_pipelines import build_tenant_dags

# Airflow 3.3 also registers every DAG whose `with DAG(...)` block closes while this file is
# imported (DagContext.autoregistered_dags). Registering by name as well keeps the DAGs found
# without relying on that side effect, and importable from this module by dag_id.
for tenant_dag in build_tenant_dags(Path(__file__).parent / "config" / "tenants.yaml"):
    globals()[tenant_dag.dag_id] = tenant_dag
