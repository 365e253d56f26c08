"""The generated project's REST client (scripts/airflow_api.py) beside apache-airflow-client, in one run.

    .cache/tools/bin/python benchmarks/rest_client.py [--runs 15]

Installs apache-airflow-client (pinned below) with its dependencies, constrained to the
generated project's constraints.txt, into .cache/bench-rest-client, and bakes the default
project for scripts/airflow_api.py. Then, for each client, in fresh interpreters:
  - import time: wall time of `python -c "import ..."`, median of --runs, beside the bare
    interpreter and `import urllib.request, json` (the floor of any standard-library client);
  - install size: the bytes of every distribution it needs, and of those the project's
    constraints.txt does not already bring;
  - listing 1,000 pools in pages of 100 from a local server, median of --runs;
  - what it does, unconfigured, on a cross-origin redirect, a 503, plain http to a remote
    host and a 401 (rest_client_driver.py).
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("rest_client_driver.py")
VENV = TEMPLATE_DIR / ".cache" / "bench-rest-client"
OFFICIAL = "apache-airflow-client==3.3.2"
TOKEN = "benchmark.jwt.token"
POOLS = [
    {
        "name": f"p{index}",
        "slots": 4,
        "description": None,
        "include_deferred": False,
        **dict.fromkeys(("occupied_slots", "running_slots", "queued_slots", "scheduled_slots", "deferred_slots"), 0),
        "open_slots": 4,
    }
    for index in range(1000)
]


@contextmanager
def server(answer: Callable[[BaseHTTPRequestHandler], tuple[int, dict, dict]]) -> Iterator[tuple[str, list]]:
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, "authorization": self.headers.get("Authorization")})
            status, headers, body = answer(self)
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def pools_api(handler: BaseHTTPRequestHandler) -> tuple[int, dict, dict]:
    if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
        return 401, {}, {"detail": "Not authenticated"}
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
    offset, limit = int(query.get("offset", ["0"])[0]), int(query.get("limit", ["100"])[0])
    return 200, {}, {"pools": POOLS[offset : offset + limit], "total_entries": len(POOLS)}


def install(project: Path) -> Path:
    python = VENV / "bin" / "python"
    uv = Path(sys.executable).with_name("uv")
    if not python.exists():
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, VENV], check=True)
    constraints = ["--constraints", str(project / "constraints.txt")]
    subprocess.run([uv, "pip", "install", "--quiet", "--python", python, OFFICIAL, *constraints], check=True)
    return python


def distribution_sizes(python: Path) -> dict[str, int]:
    """Bytes on disk of each distribution in the venv, by normalised name."""
    code = (
        "import importlib.metadata as m, json\n"
        "print(json.dumps({d.metadata['Name']: sum(f.locate().stat().st_size for f in d.files or [] "
        "if f.locate().exists()) for d in m.distributions()}))"
    )
    sizes = json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)
    return {re.sub(r"[-_.]+", "-", name).lower(): size for name, size in sizes.items() if name not in ("pip",)}


def pinned(project: Path) -> set[str]:
    lines = (project / "constraints.txt").read_text().splitlines()
    return {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in lines if "==" in line}


def median_wall_ms(command: list, cwd: Path, runs: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True)
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def driver(python: Path, project: Path, *args: str) -> dict:
    # The project's root on the path, as `python -m` from there gives the tools.
    env = {**os.environ, "PYTHONPATH": str(project)}
    result = subprocess.run([python, DRIVER, *args], cwd=project, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def probes(python: Path, project: Path, kind: str) -> dict[str, str]:
    found = {}
    with server(pools_api) as (elsewhere, seen_elsewhere):
        moved = (302, {"Location": f"{elsewhere}/api/v2/pools/p0"}, {})
        with server(lambda handler: moved) as (url, _):
            result = driver(python, project, kind, "redirect", url)["result"]
        tokens = [request["authorization"] for request in seen_elsewhere]
        reached = "not contacted" if not tokens else ("token sent" if any(tokens) else "contacted, token dropped")
        found["GET redirected (302) to another origin"] = f"{result}; other origin {reached}"
    failures = iter([(503, {}, {"detail": "restarting"})])
    with server(lambda handler: next(failures, (200, {}, POOLS[0]))) as (url, seen):
        result = driver(python, project, kind, "retry", url)["result"]
        found["one 503, then 200"] = f"{result} after {len(seen)} request(s)"
    found["http:// to a remote host"] = driver(python, project, kind, "plain-http", "-")["result"]
    with server(lambda handler: (401, {}, {"detail": "Invalid JWT"})) as (url, _):
        found["401"] = driver(python, project, kind, "unauthorized", url)["result"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(cookiecutter(str(TEMPLATE_DIR), no_input=True, output_dir=scratch))
        python = install(project)
        imports = {
            "bare interpreter (floor)": "pass",
            "urllib.request + json (stdlib floor)": "import urllib.request, json",
            "scripts.airflow_api (ours)": "import scripts.airflow_api",
            f"airflow_client.client ({OFFICIAL})": "import airflow_client.client",
        }
        print(f"| import, fresh interpreter ({runs} runs) | median ms |\n|---|---|")
        for name, code in imports.items():
            print(f"| {name} | {median_wall_ms([python, '-c', code], project, runs):.0f} |")

        sizes, in_constraints = distribution_sizes(python), pinned(project)
        official = {name: size for name, size in sizes.items() if name != "setuptools"}
        ours_bytes = (project / "scripts" / "airflow_api.py").stat().st_size
        added = sum(size for name, size in official.items() if name not in in_constraints)
        print("\n| install size | every distribution | beyond the project's constraints.txt |\n|---|---|---|")
        print(f"| scripts/airflow_api.py | {ours_bytes / 1024:.0f} KiB (one file) | {ours_bytes / 1024:.0f} KiB |")
        print(
            f"| {OFFICIAL} | {sum(official.values()) / 2**20:.1f} MiB in {len(official)} distributions "
            f"({', '.join(sorted(official))}) | {added / 2**20:.1f} MiB |"
        )

        print(f"\n| list 1,000 pools, pages of 100, local server | median ms of {runs} |\n|---|---|")
        with server(pools_api) as (url, _):
            for kind in ("ours", "official"):
                listed = driver(python, project, kind, "list", url, str(runs))
                assert listed["pools"] == len(POOLS), listed
                print(f"| {kind} | {listed['median_ms']:.1f} |")

        found = {kind: probes(python, project, kind) for kind in ("ours", "official")}
        print("\n| unconfigured behaviour | scripts/airflow_api.py | apache-airflow-client |\n|---|---|---|")
        for probe in found["ours"]:
            print(f"| {probe} | {found['ours'][probe]} | {found['official'][probe]} |")


if __name__ == "__main__":
    main()
