"""Shared code for this project's DAGs.

Airflow puts plugins/ on sys.path, so DAG files import this package by name. Logic lives
here, where unit tests can reach it; DAG files only wire it together.
"""
