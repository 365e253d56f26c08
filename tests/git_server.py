"""A git server over HTTP on a loopback port that asks for a password, as GitHub and GitLab do.

It runs git's own `git http-backend` for every request and answers 401 until the client sends
the expected basic-auth credentials, so a push through it proves that git got the token from a
credential helper. A reader's credentials may fetch but not push, like a CI job's own token.
Every request's credentials and path are recorded.
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class GitServer:
    root: Path
    username: str
    password: str
    url: str = ""
    # (path, "user:password" or "") of every request.
    requests: list[tuple[str, str]] = field(default_factory=list)

    def bare_repository(self, name: str) -> Path:
        repository = self.root / name
        subprocess.run(["git", "init", "--quiet", "--bare", str(repository)], check=True)
        subprocess.run(["git", "config", "http.receivepack", "true"], cwd=repository, check=True)
        subprocess.run(["git", "config", "receive.advertisePushOptions", "true"], cwd=repository, check=True)
        return repository


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    chunks = []
    while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
        chunks.append(handler.rfile.read(size))
        handler.rfile.readline()
    handler.rfile.readline()
    return b"".join(chunks)


@contextlib.contextmanager
def git_http_server(
    root: Path, username: str, password: str, reader: tuple[str, str] | None = None
) -> Iterator[GitServer]:
    server_state = GitServer(root, username, password)

    def basic(user: str, secret: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()

    writer = basic(username, password)
    readers = {writer} | ({basic(*reader)} if reader else set())

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            given = self.headers.get("Authorization", "")
            decoded = base64.b64decode(given.removeprefix("Basic ")).decode() if given.startswith("Basic ") else ""
            path, _, query = self.path.partition("?")
            server_state.requests.append((path, decoded))
            body = read_body(self) if self.command == "POST" else b""
            pushing = "git-receive-pack" in self.path
            if given not in ({writer} if pushing else readers):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            environ = {
                "PATH": "/usr/bin:/bin",
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "REMOTE_USER": username,
                "REMOTE_ADDR": "127.0.0.1",
            }
            result = subprocess.run(["git", "http-backend"], input=body, env=environ, capture_output=True, check=True)
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
            status = next((int(value.split()[0]) for name, value in headers if name.lower() == "status"), 200)
            self.send_response(status)
            for name, value in headers:
                if name.lower() != "status":
                    self.send_header(name, value.strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, *args) -> None:  # keep test output readable
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
