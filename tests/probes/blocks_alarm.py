"""A DAG file that defeats Airflow's import timeout, a SIGALRM, by blocking the signal and then hanging:
`make upgrade-check` must still stop it."""

import signal
import time

from airflow.sdk import DAG

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
time.sleep(3600)
dag = DAG(dag_id="never", schedule=None)
