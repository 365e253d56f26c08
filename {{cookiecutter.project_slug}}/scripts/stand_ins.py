"""Local stand-ins for the outside systems the example DAGs call, and their default connections.

`make run` and `docker compose up` start these so that every example runs with no internet and
nothing configured by hand. The stand-ins keep the contract of the real systems:

| connection | stand-in | contract |
|---|---|---|
| `example_api` | `serve` below | `GET /orders?date=YYYY-MM-DD` answers 200 `{"records": [...]}` |
| `example_export_api` | `serve` below | `GET /exports/<YYYY-MM-DD>` answers 200 `{"state": "ready", "rows": N}` |
| `warehouse` | a database on make run's embedded PostgreSQL (compose: the `warehouse` service) | PostgreSQL |

`connections` writes these as connections in the metadata database, the last place Airflow
looks: a connection in your secrets backend or an `AIRFLOW_CONN_<ID>` variable (in .env) wins
over it, and so does any change you make to it in the UI, which this script then leaves alone.
To use the real system, set one of those; nothing else changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# How a connection this script wrote says so; the digest is of the URI it wrote, so a
# connection edited since (its URI differs) is the team's and is never overwritten.
STAND_IN_NOTE = "Local stand-in written by scripts/stand_ins.py; edit or replace it and it is left alone."


def orders_for(day: date) -> list[dict]:
    """A few orders per day, the same ones on every call."""
    count = 3 + day.toordinal() % 5
    return [
        {"order_id": f"{day.isoformat()}-{number:03d}", "date": day.isoformat(), "amount": round(10 + number * 7.5, 2)}
        for number in range(count)
    ]


class StandInApis(BaseHTTPRequestHandler):
    server_version = "stand-in-apis"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        if url.path == "/health":
            self.answer(200, {"status": "ok"})
        elif url.path.rstrip("/") == "/orders":
            day = self.parse_day(parse_qs(url.query).get("date", [""])[0], "query parameter date")
            if day:
                self.answer(200, {"records": orders_for(day)})
        elif url.path.startswith("/exports/"):
            day = self.parse_day(url.path.removeprefix("/exports/").strip("/"), "path /exports/<YYYY-MM-DD>")
            if day:
                self.answer(200, {"state": "ready", "rows": len(orders_for(day))})
        else:
            self.answer(404, {"error": f"no stand-in for {url.path}; see scripts/stand_ins.py"})

    def parse_day(self, text: str, where: str) -> date | None:
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.answer(400, {"error": f"{where} must be a date YYYY-MM-DD, got {text!r}"})
            return None

    def answer(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        print(f"{self.address_string()} {format % args}", flush=True)


def serve(host: str, port: int) -> None:
    server = ThreadingHTTPServer((host, port), StandInApis)
    print(f"stand-in APIs on http://{host}:{server.server_address[1]}", flush=True)
    server.serve_forever()


def stand_in_connections(api_url: str, warehouse_uri: str) -> dict[str, str]:
    """The default connections of the examples: id -> URI. The one place they are defined."""
    return {
        "example_api": api_url,
        "example_export_api": api_url,
        "warehouse": warehouse_uri,
    }


def digest(uri: str) -> str:
    """A short fingerprint of a connection's URI, kept in its description."""
    return hashlib.sha256(uri.encode()).hexdigest()[:16]


def write_connections(connections: dict[str, str]) -> None:
    """Create each connection, or move one this script wrote; leave every other one alone."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        for conn_id, uri in connections.items():
            variable = f"AIRFLOW_CONN_{conn_id.upper()}"
            if os.environ.get(variable):
                print(f"connection {conn_id}: {variable} is set and wins over the stand-in")
                continue
            wanted = Connection(conn_id=conn_id, uri=uri)
            wanted.description = f"{STAND_IN_NOTE} [{digest(wanted.get_uri())}]"
            existing = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
            if existing is None:
                session.add(wanted)
                print(f"connection {conn_id}: the local stand-in")
            elif (existing.description or "").endswith(f"[{digest(existing.get_uri())}]"):
                for attribute in ("conn_type", "host", "login", "schema", "port", "extra", "description"):
                    setattr(existing, attribute, getattr(wanted, attribute))
                existing.password = wanted.password
            else:
                print(f"connection {conn_id}: yours, from the metadata database (not the stand-in)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the stand-in HTTP APIs")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    connections_parser = commands.add_parser("connections", help="write the default connections")
    connections_parser.add_argument("--api-url", required=True, help="where `serve` listens")
    connections_parser.add_argument("--warehouse-uri", required=True, help="the warehouse database, as a URI")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.host, args.port)
    else:
        write_connections(stand_in_connections(args.api_url, args.warehouse_uri))
    return 0


if __name__ == "__main__":
    sys.exit(main())
