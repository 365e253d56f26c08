"""Helpers the DAGs import (not DAG files themselves)."""

from airflow.models import Variable
from airflow.utils.session import provide_session


@provide_session
def latest_state(dag_id, session=None):
    return session.execute("select state from dag_run where dag_id = :d", {"d": dag_id}).scalar()


def feature_flag(name):
    return Variable.get(name, default_var="off")
