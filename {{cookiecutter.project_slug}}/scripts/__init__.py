"""Command-line tools for a running Airflow, run from the project root: `python -m scripts.<tool>`.

airflow_api is the REST API client they and deploy/ share.
"""
