#!/usr/bin/env bash
# Run every Airflow component on this machine (`airflow standalone`: api-server, scheduler,
# dag-processor, triggerer) and stop all of them on Ctrl-C.
#
# Killing only the standalone parent leaves the scheduler and its LocalExecutor workers
# running, so the components get a process group of their own and the whole group is stopped.
set -euo pipefail

stop() {
  trap - INT TERM EXIT
  kill -TERM -- "-$group" 2>/dev/null || return 0
  for _ in $(seq 30); do
    kill -0 -- "-$group" 2>/dev/null || return 0
    sleep 1
  done
  echo "Airflow did not stop within 30 s; killing it." >&2
  kill -KILL -- "-$group" 2>/dev/null || true
}

set -m # job control: the next background job leads a new process group
airflow standalone &
group=$!
set +m
trap stop INT TERM EXIT
wait "$group"
