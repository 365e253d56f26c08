"""`make upgrade-check` and `make upgrade-fix`: what an Airflow 2 repository needs before it runs on Airflow 3.

One module per kind of check, each usable on its own:

- `sources`: which Python files and DAG files the old repository holds.
- `lint`: ruff's Airflow 3 rules, with the fixes ruff can make itself.
- `patterns`: what ruff cannot see, read from the syntax tree (metadata-DB access, SLAs, context
  keys and templates that need a logical date, SubDAGs, `airflow.contrib`, `schedule_interval`).
- `references`: pools and connections the code names that this project does not declare.
- `parsing`: every DAG file imported by this project's Airflow, one subprocess per file, with a time limit.
- `config`: `airflow config lint` and `airflow config update` on a copy of the old airflow.cfg.
- `fixes`: ruff's safe fixes, checked, on a copy or a new git branch.
- `report`: one status per file, the summary line, Markdown and JSON.

`check` runs them together; `cli` is the command line (`python -m scripts.upgrade_check --help`).
"""
