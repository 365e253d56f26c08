"""Every row of the given tables in the metadata DB (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN), as one JSON line.

Usage: python fab_tables.py <table>...
"""

from __future__ import annotations

import json
import os
import sys

from sqlalchemy import create_engine, text

engine = create_engine(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
with engine.connect() as connection:
    tables = {
        table: [list(map(str, row)) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
        for table in sys.argv[1:]
    }
print(json.dumps(tables))
