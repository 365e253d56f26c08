"""Airflow's own OpenTelemetry logger exports metrics over OTLP/HTTP to a receiver in this process.

The logger is set up as every Airflow component sets it up from the project's config. Reads
[[name, kind, tags], ...] from stdin, sends each metric once, and prints one JSON line: per exported
metric, its data kind, whether a sum is monotonic, its unit and its attribute names, decoded with
OpenTelemetry's protobuf definitions.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

exports = []


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        exports.append(ExportMetricsServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
# Set before Airflow's modules load: the exporter reads them when it is created.
os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_address[1]}"
os.environ["OTEL_METRIC_EXPORT_INTERVAL"] = "200"

from airflow._shared.observability.metrics import stats  # noqa: E402
from airflow.configuration import conf  # noqa: E402
from airflow.observability.metrics import stats_utils  # noqa: E402

legacy_names = conf.getboolean("metrics", "legacy_names_on")
stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=legacy_names)
wanted = json.load(sys.stdin)
for name, kind, tags in wanted:
    {"counter": stats.incr, "gauge": lambda name, tags: stats.gauge(name, 3, tags=tags)}[kind](name, tags=tags)

metrics, deadline = {}, time.monotonic() + 60
while len(metrics) < len(wanted) and time.monotonic() < deadline:
    time.sleep(0.2)
    for export in list(exports):
        for resource in export.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    points = getattr(metric, kind).data_points
                    metrics[metric.name] = {
                        "kind": kind,
                        "monotonic": kind == "sum" and metric.sum.is_monotonic,
                        "unit": metric.unit,
                        "attributes": sorted({attribute.key for point in points for attribute in point.attributes}),
                    }
print(json.dumps(metrics))
os._exit(0)  # not another export at exit, to a receiver that is gone
