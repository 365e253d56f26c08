"""Real servers on 127.0.0.1 for the tests: HTTP or HTTPS, scripted answers, recorded requests.

One helper for every test that needs an outside web service (an API, a webhook, PagerDuty):
the code under test makes real requests over a real socket, and the test reads what arrived.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def free_port() -> int:
    """A port nothing listens on right now (connecting to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Request:
    method: str
    # The request line's target as sent: a path with its query string, or through a proxy the absolute URL.
    target: str
    headers: Message
    body: bytes

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query, keep_blank_values=True)

    def json(self) -> Any:
        """The body decoded as JSON, or None without a body."""
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes | dict | list = b""  # bytes as they are, anything else as JSON
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # Send only the first `truncate_at` bytes of a chunked body, then close: a transfer cut short.
    truncate_at: int | None = None

    def encoded(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


# A reply of HOLD keeps the request waiting until the server stops, to provoke a client timeout.
HOLD = None

Answer = Callable[[Request], Reply | None] | Reply


@dataclass
class Server:
    """What a running server has been asked, and what it answers next."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    replies: deque[Reply | None] = field(default_factory=deque)
    # When no reply is queued: a function of the request, or this fixed reply.
    default: Answer = field(default_factory=lambda: Reply(200, {"ok": True}))
    released: threading.Event = field(default_factory=threading.Event)

    def queue(self, *replies: Reply | None) -> None:
        self.replies.extend(replies)

    def answer(self, request: Request) -> Reply | None:
        if self.replies:
            return self.replies.popleft()
        return self.default(request) if callable(self.default) else self.default

    @property
    def paths(self) -> list[str]:
        return [request.path for request in self.requests]


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Request(self.command, self.path, self.headers, body)
            server.requests.append(request)
            reply = server.answer(request)
            if reply is None:
                server.released.wait()
                self.close_connection = True
                return
            data = reply.encoded()
            self.send_response(reply.status)
            for name, value in {"Content-Type": reply.content_type, **reply.headers}.items():
                self.send_header(name, value)
            if reply.truncate_at is None:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data[: reply.truncate_at])
            self.wfile.flush()
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(default: Answer | None = None, *, tls: ssl.SSLContext | None = None, port: int = 0) -> Iterator[Server]:
    """A threaded HTTP (or, with ``tls``, HTTPS) server on 127.0.0.1 until the block ends.

    ``default`` answers every request no queued reply answers: a fixed Reply, or a function of the Request.
    """
    state = Server() if default is None else Server(default=default)
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(state))
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    state.url = f"{'https' if tls else 'http'}://127.0.0.1:{httpd.server_port}"
    # A short poll interval lets shutdown() return quickly.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.released.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA (for clients to trust) and a server context with a certificate it signed for 127.0.0.1."""

    ca_file: Path
    server_context: ssl.SSLContext


def make_certificates(folder: Path) -> Certificates:
    now = datetime.now(UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ca_ski, critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    return Certificates(ca_file, server_context)
