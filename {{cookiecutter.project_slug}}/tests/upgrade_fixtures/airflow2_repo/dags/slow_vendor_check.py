"""Calls a vendor at parse time and never returns: the parse must be cut off, not the report."""

import time

from airflow import DAG

time.sleep(3600)

dag = DAG(dag_id="slow_vendor_check", schedule=None)
