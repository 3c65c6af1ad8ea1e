"""One gallery test suite, run against both backends: a SQLite file and a real PostgreSQL + pgvector that the
test session starts (`pg_server` in conftest.py). Plus what only one backend has: schema-1 SQLite migration,
the TLS rule for remote databases, an unreachable database."""
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from stream.errors import GalleryError
from stream.gallery import check_url, is_url, open_gallery
from stream.gallery.base import exact_search

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def emb(n, seed=0, d=8):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def win(n, seed=0, f=6, J=20):
    return np.random.default_rng(seed + 100).normal(size=(n, f, J, 3)).astype(np.float32)


def _python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{REPO}", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, timeout=timeout,
                          capture_output=True, text=True, check=False)


def test_enrol_list_load_remove(gallery_spec):
    with open_gallery(gallery_spec) as g:
        assert g.enroll("ana", emb(4, 0), "fp1", source="walk0", windows=win(4)) == 4
        g.enroll("ben", emb(3, 1), "fp1")
        g.enroll("ana", emb(2, 2), "fp1", source="walk1")  # a second session for ana
        people = {p.name: p for p in g.people()}
        assert people["ana"].embeddings == 6 and people["ben"].embeddings == 3
        assert people["ana"].windows == 4 and people["ben"].windows == 0
        assert not people["ana"].anonymous and g.fingerprints() == ["fp1"]
        data = g.load("fp1")
        assert data.names == ["ana", "ben"] and data.embeddings.shape == (9, 8)
        np.testing.assert_array_equal(data.embeddings[data.person == 1], emb(3, 1))  # float32 round trip, exact
        np.testing.assert_array_equal(data.embeddings[data.person == 0], np.vstack([emb(4, 0), emb(2, 2)]))
        assert len(np.unique(data.session[data.person == 0])) == 2
        assert list(data.anonymous) == [False, False] and data.stale == []
        assert g.remove("ben") == 3
        assert [p.name for p in g.people()] == ["ana"]
        with pytest.raises(GalleryError, match="nobody called"):
            g.remove("ben")
        assert g.load("fp1").names == ["ana"]


def test_refuses_another_models_embeddings_naming_reembed(gallery_spec):
    with open_gallery(gallery_spec) as g:
        g.enroll("ana", emb(2), "fp1")
        with pytest.raises(GalleryError, match="fp1.*cagereid gallery reembed --model DIR"):
            g.load("fp2")
        with pytest.raises(GalleryError, match="fp1.*reembed"):
            g.enroll("ben", emb(2), "fp2")
        with pytest.raises(GalleryError, match="8-dimensional"):
            g.enroll("ben", emb(2, d=9), "fp1")
        assert [p.name for p in g.people()] == ["ana"]


def test_version_changes_when_another_handle_commits(gallery_spec):
    with open_gallery(gallery_spec) as writer, open_gallery(gallery_spec, readonly=True) as reader:
        v0 = reader.version()
        assert reader.version() == v0  # nothing changed: the same number
        writer.enroll("ana", emb(2), "fp1")
        v1 = reader.version()
        assert v1 != v0
        writer.remove("ana")
        assert reader.version() not in (v0, v1)
        with pytest.raises(GalleryError):
            reader.enroll("ben", emb(2), "fp1")  # read-only handles cannot write
        assert [p.name for p in writer.people()] == []


def test_visitor_names_are_unique_across_processes_and_retention_purges_them(gallery_spec):
    code = f"""
        from stream.gallery import open_gallery
        with open_gallery({gallery_spec!r}) as g:
            print(" ".join(g.next_visitor_name() for _ in range(15)))
    """
    with open_gallery(gallery_spec) as g:
        g.enroll("ana", emb(2), "fp1")
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(REPO))) for _ in range(2)]
    names = []
    with open_gallery(gallery_spec) as g:
        names += [g.next_visitor_name() for _ in range(15)]
        for p in procs:
            out, _ = p.communicate(timeout=60)
            assert p.returncode == 0
            names += out.split()
        assert len(names) == 45 and len(set(names)) == 45 and all(n.startswith("visitor-") for n in names)
        old, new = names[0], names[1]
        g.enroll(old, emb(3, 1), "fp1", anonymous=True)
        time.sleep(0.3)
        g.enroll(new, emb(3, 2), "fp1", anonymous=True)
        people = {p.name: p for p in g.people()}
        assert people[old].anonymous and people[new].anonymous and not people["ana"].anonymous
        data = g.load("fp1")
        assert dict(zip(data.names, data.anonymous.tolist())) == {"ana": False, old: True, new: True}
        assert g.purge_anonymous(0.15) == 1  # only the visitor not seen for 0.15 s
        assert sorted(p.name for p in g.people()) == sorted(["ana", new])
        assert g.purge_anonymous(0) == 1 and [p.name for p in g.people()] == ["ana"]  # named people stay


def test_search_finds_the_nearest_people_like_the_matcher(gallery_spec):
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(60, 16)).astype(np.float32) * 3
    with open_gallery(gallery_spec) as g:
        for i, c in enumerate(centres):
            g.enroll(f"p{i:02d}", c + 0.3 * rng.normal(size=(4, 16)).astype(np.float32), "fp1")
        queries = centres[[5, 17, 42]] + 0.3 * rng.normal(size=(3, 16)).astype(np.float32)
        data = g.load("fp1")
        for metric in ("euclidean", "cosine"):
            got = g.search(queries, 5, "fp1", metric=metric)
            want = exact_search(data, queries, 5, metric, "centroid")
            assert [n[0] for n in got.names] == ["p05", "p17", "p42"]
            assert got.names == want.names
            np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-5)
        near = g.search(queries, 3, "fp1", reduce="nearest")
        assert [n[0] for n in near.names] == ["p05", "p17", "p42"]
    with open_gallery(gallery_spec, readonly=True) as g, pytest.raises(GalleryError, match="reembed"):
        g.search(queries, 5, "fp9")  # another model's gallery: the same one-line error as load


def test_crash_mid_enrolment_in_another_process_leaves_the_gallery_as_it_was(gallery_spec):
    with open_gallery(gallery_spec) as g:
        g.enroll("ana", emb(3), "fp1")
        before = g.load("fp1")
        v = g.version()
    r = _python(f"""
        import os, numpy as np
        from stream.gallery import open_gallery
        g = open_gallery({gallery_spec!r})
        def die(i):
            if i == 4:
                os._exit(9)
        g.enroll("ben", np.ones((10, 8), np.float32), "fp1", windows=np.ones((10, 6, 20, 3), np.float32),
                 after_each=die)
    """)
    assert r.returncode == 9, r.stderr
    with open_gallery(gallery_spec) as g:
        assert [p.name for p in g.people()] == ["ana"] and g.version() == v
        np.testing.assert_array_equal(g.load("fp1").embeddings, before.embeddings)
        g.enroll("ben", emb(2, 5), "fp1")  # and the gallery is still writable
        assert [p.name for p in g.people()] == ["ana", "ben"]


def test_watcher_sees_an_enrolment_from_another_process(gallery_spec):
    """Several processes share one gallery: a running identifier's watcher picks up what another enrolled."""
    from stream.config import StreamConfig
    from stream.identify import GalleryWatcher

    with open_gallery(gallery_spec) as g:
        g.enroll("ana", emb(4, 0), "fp1")
        g.enroll("ana", emb(4, 1), "fp1")
    w = GalleryWatcher(gallery_spec, "fp1", StreamConfig(), poll_s=0.05)
    assert w.load_now().names == ["ana"]
    w.start()
    try:
        r = _python(f"""
            import numpy as np
            from stream.gallery import open_gallery
            with open_gallery({gallery_spec!r}) as g:
                g.enroll("ben", np.random.default_rng(2).normal(size=(4, 8)).astype(np.float32), "fp1")
        """)
        assert r.returncode == 0, r.stderr
        m = None
        for _ in range(200):
            m = w.take()
            if m is not None:
                break
            threading.Event().wait(0.05)
        assert m is not None and m.names == ["ana", "ben"] and w.error is None
    finally:
        w.stop()


def test_copy_round_trip_sqlite_postgres_sqlite(tmp_path, pg_url, capsys):
    """`gallery copy` keeps everything: people, visitor flags, sessions, vectors and windows, bit for bit."""
    from cagereid.cli import main

    src = str(tmp_path / "src.sqlite")
    with open_gallery(src) as g:
        g.enroll("ana", emb(4, 0), "fp1", source="walk0", windows=win(4, 0))
        g.enroll("ana", emb(3, 1), "fp1", source="walk1", windows=win(3, 1))
        g.enroll("ben", emb(2, 2), "fp1")  # enrolled before windows were kept
        g.enroll("visitor-1", emb(3, 3), "fp1", anonymous=True, windows=win(3, 3))
        want = list(g.export())
        want_data = g.load("fp1")
    back = str(tmp_path / "back.sqlite")
    assert main(["gallery", "copy", src, pg_url, "-q"]) == 0
    assert main(["gallery", "copy", pg_url, back, "-q"]) == 0
    assert "copied 3 people" in capsys.readouterr().out
    with open_gallery(back, readonly=True) as g:
        got = list(g.export())
        data = g.load("fp1")
    assert [(r.name, r.anonymous, len(r.rows)) for r in got] == [(r.name, r.anonymous, len(r.rows)) for r in want]
    for a, b in zip(got, want):
        assert a.created == b.created and a.updated == b.updated
        for x, y in zip(a.rows, b.rows):
            np.testing.assert_array_equal(x["vector"], y["vector"])
            assert x["source"] == y["source"] and x["fingerprint"] == y["fingerprint"]
            assert (x["window"] is None) == (y["window"] is None)
            if x["window"] is not None:
                np.testing.assert_array_equal(x["window"], y["window"])
    assert data.names == want_data.names
    # sessions keep their grouping (numbers may differ)
    assert len(np.unique(data.session[data.person == 0])) == 2
    # a non-empty destination is refused (nothing written) unless --merge, and then clashing names are refused
    assert main(["gallery", "copy", src, pg_url]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["gallery", "copy", src, pg_url, "--merge"]) == 2
    assert "already holds 'ana'" in capsys.readouterr().err
    with open_gallery(pg_url) as g:
        assert sorted(p.name for p in g.people()) == ["ana", "ben", "visitor-1"]
        assert sum(p.embeddings for p in g.people()) == 12


def test_copy_to_a_new_file_leaves_nothing_behind_on_failure(tmp_path, capsys):
    from cagereid.cli import main

    src = tmp_path / "src.sqlite"
    with open_gallery(src) as g:
        g.enroll("ana", emb(2), "fp1")
    with __import__("sqlite3").connect(src) as db:  # an old gallery may hold names that are no longer valid
        db.execute("UPDATE people SET name='bad[/]name'")
    dst = tmp_path / "dst.sqlite"
    assert main(["gallery", "copy", str(src), str(dst)]) == 2
    assert "invalid person name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.sqlite"]  # no DST, no temporary file


def _make_model(tmp_path, fingerprint: str, scale: float) -> str:
    """A `module:factory` model for `gallery reembed --model`: the fake encoder with another fingerprint."""
    mod = tmp_path / f"reembed_model_{fingerprint}.py"
    mod.write_text(textwrap.dedent(f"""
        import numpy as np
        from stream_fakes import FakeEncoder

        class Other(FakeEncoder):
            fingerprint = {fingerprint!r}
            def embed(self, windows):
                return {scale} * super().embed(windows)

        def make():
            return Other()
    """))
    sys.path.insert(0, str(tmp_path))
    return f"reembed_model_{fingerprint}:make"


def test_reembed_converts_a_gallery_to_another_model(gallery_spec, tmp_path, capsys):
    import stream_fakes

    from cagereid.cli import main

    fake = stream_fakes.FakeEncoder()
    w_ana, w_cy = win(5, 0, J=20), win(4, 1, J=20)
    with open_gallery(gallery_spec) as g:
        g.enroll("ana", fake.embed(w_ana), fake.fingerprint, windows=w_ana)
        g.enroll("cy", fake.embed(w_cy), fake.fingerprint, windows=w_cy)
        g.enroll("ben", emb(3, d=15), fake.fingerprint)  # before windows were stored
    model = _make_model(tmp_path, "other0001", 2.0)
    try:
        assert main(["gallery", "reembed", "--model", model, "--gallery", gallery_spec, "-q"]) == 0
    finally:
        sys.path.remove(str(tmp_path))
    out = capsys.readouterr()
    assert "re-embedded 9 windows" in out.out and "other0001" in out.out
    assert "1 people have no stored windows" in out.err and "ben" in out.err and "re-enrol" in out.err
    with open_gallery(gallery_spec, readonly=True) as g:
        data = g.load("other0001")
        assert data.names == ["ana", "cy"] and data.stale == ["ben"]
        np.testing.assert_allclose(data.embeddings[data.person == 0], 2.0 * fake.embed(w_ana), rtol=1e-6)
        assert set(g.fingerprints()) == {"other0001", fake.fingerprint}  # ben's old rows stay until re-enrolled
        assert g.search(data.embeddings[:1], 1, "other0001").names == [["ana"]]
    with open_gallery(gallery_spec) as g:  # the new model may enrol now; ben re-enrolled is matched again
        g.enroll("ben", 2.0 * fake.embed(win(3, 7)), "other0001", windows=win(3, 7))
        assert g.load("other0001").stale == []


def test_reembed_without_windows_or_with_the_wrong_window_shape_is_one_line(gallery_spec, tmp_path, capsys):
    from cagereid.cli import main

    with open_gallery(gallery_spec) as g:
        g.enroll("ben", emb(3, d=15), "fp1")
    sys.path.insert(0, str(tmp_path))
    try:
        model = _make_model(tmp_path, "other0002", 1.0)
        assert main(["gallery", "reembed", "--model", model, "--gallery", gallery_spec]) == 2
        assert "no stored windows" in capsys.readouterr().err
        with open_gallery(gallery_spec) as g:
            g.enroll("ana", emb(3, d=15), "fp1", windows=win(3, f=8))
        assert main(["gallery", "reembed", "--model", model, "--gallery", gallery_spec]) == 2
        assert "8 frames x 20 joints, the model takes 6 x 20" in capsys.readouterr().err
    finally:
        sys.path.remove(str(tmp_path))
    with open_gallery(gallery_spec, readonly=True) as g:
        assert g.fingerprints() == ["fp1"]  # nothing changed


def test_live_and_enroll_name_reembed_for_a_gallery_of_another_model(gallery_spec, capsys):
    from cagereid.cli import main

    with open_gallery(gallery_spec) as g:
        g.enroll("ana", emb(3, d=15), "fp-old")
    code = main(["enroll", "--name", "ben", "--source", "synthetic:ids=1", "--model", "stream_fakes:make_encoder",
                 "--gallery", gallery_spec, "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "fp-old" in err and "cagereid gallery reembed --model DIR" in err
    assert len(err.strip().splitlines()) == 1


# --- SQLite only ---------------------------------------------------------------------------------------------
_SCHEMA1 = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE embeddings(id INTEGER PRIMARY KEY, person INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL, source TEXT NOT NULL DEFAULT '',
    session INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE INDEX embeddings_person ON embeddings(person);
INSERT INTO meta VALUES('schema', '1');
INSERT INTO people VALUES(1, 'ana', 1.0, 2.0);
"""


def test_a_schema_1_gallery_is_read_as_it_is_and_migrated_by_a_write_open(tmp_path):
    import hashlib
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(_SCHEMA1)
        for i, v in enumerate(emb(3)):
            db.execute("INSERT INTO embeddings(person, fingerprint, dim, vector, session, created) "
                       "VALUES(1, 'fp1', 8, ?, 1, 1.0)", (v.tobytes(),))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with open_gallery(path, readonly=True) as g:  # read-only: read as schema 1, the file untouched
        data = g.load("fp1")
        assert data.names == ["ana"] and list(data.anonymous) == [False]
        np.testing.assert_array_equal(data.embeddings, emb(3))
        assert [(p.name, p.embeddings, p.windows) for p in g.people()] == [("ana", 3, 0)]
        v0 = g.version()
        with pytest.raises(GalleryError):
            g.next_visitor_name()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    with open_gallery(path) as g:  # a write open migrates, in one transaction
        assert g.next_visitor_name() == "visitor-1"
        g.enroll("visitor-1", emb(2, 1), "fp1", anonymous=True, windows=win(2))
        np.testing.assert_array_equal(g.load("fp1").embeddings[:3], emb(3))
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == "2"
    with open_gallery(path, readonly=True) as g:
        assert g.version() != v0
        assert {p.name: p.anonymous for p in g.people()} == {"ana": False, "visitor-1": True}


# --- PostgreSQL only -----------------------------------------------------------------------------------------
def test_a_remote_database_needs_verified_tls():
    for url in ("postgresql://cam:s3cret@db.example.com/gallery", "postgresql://cam@10.0.0.5:5432/g?sslmode=require",
                "postgres://db.example.com,localhost/g", "postgresql:///g?host=db.example.com"):
        with pytest.raises(GalleryError, match="sslmode=verify-full") as exc:
            open_gallery(url)
        assert "s3cret" not in str(exc.value) and len(str(exc.value).splitlines()) == 1
    for url in ("postgresql://cam@db.example.com/g?sslmode=verify-full", "postgresql://localhost/g",
                "postgresql://127.0.0.1:5433/g", "postgresql://[::1]/g", "postgresql:///g?host=/run/postgresql",
                "postgresql://u:p@/g?host=/tmp/x"):
        assert check_url(url) == url
    assert is_url("postgresql://x/y") and not is_url("gallery.sqlite")


def test_an_unreachable_database_is_one_line_and_writes_nothing(pg_url, tmp_path, capsys):
    from cagereid.cli import main

    dead = "postgresql://postgres@/nothing?host=" + str(tmp_path)  # no server on this socket
    with pytest.raises(GalleryError, match="cannot reach the gallery database") as exc:
        open_gallery(dead)
    assert len(str(exc.value).splitlines()) == 1
    code = main(["enroll", "--name", "ana", "--source", "synthetic:ids=1", "--model", "stream_fakes:make_encoder",
                 "--gallery", dead, "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach" in err and len(err.strip().splitlines()) == 1


def test_database_down_for_a_while_decisions_go_on_and_enrolment_fails_cleanly(pg_url, pg_server):
    """The database stops taking connections: the watcher keeps the cached matching and reports the error; an
    enrolment fails with one line and leaves nothing; when it is back, the watcher catches up by itself."""
    import psycopg

    from stream.config import StreamConfig
    from stream.identify import GalleryWatcher

    dbname = pg_url.split("?")[0].rsplit("/", 1)[1]
    with open_gallery(pg_url) as g:
        g.enroll("ana", emb(4, 0), "fp1")
        g.enroll("ana", emb(4, 1), "fp1")
    w = GalleryWatcher(pg_url, "fp1", StreamConfig(), poll_s=0.05)
    assert w.load_now().names == ["ana"]
    w.start()
    writer = open_gallery(pg_url)
    admin = psycopg.connect(pg_server.get_uri(), autocommit=True)
    try:
        admin.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,))
        for _ in range(100):
            if w.error:
                break
            threading.Event().wait(0.05)
        assert w.error and "cannot reach" in w.error
        assert w.take() is None  # nothing new: the identifier keeps matching on the cached gallery
        with pytest.raises(GalleryError, match="cannot reach") as exc:
            writer.enroll("ben", emb(4, 2), "fp1")
        assert len(str(exc.value).splitlines()) == 1
        admin.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS true")
        writer.enroll("cy", emb(4, 3), "fp1")  # the handle reconnects by itself
        m = None
        for _ in range(200):
            m = w.take()
            if m is not None:
                break
            threading.Event().wait(0.05)
        assert m is not None and m.names == ["ana", "cy"] and w.error is None  # ben was never half-written
    finally:
        admin.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS true")
        admin.close()
        writer.close()
        w.stop()


def test_a_foreign_cagereid_schema_is_refused_and_left_alone(pg_url):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE SCHEMA cagereid")
        db.execute("CREATE TABLE cagereid.meta(key text, value text)")
    for kw in ({}, {"readonly": True}):
        with pytest.raises(GalleryError, match="not a cagereid gallery"):
            open_gallery(pg_url, **kw)
    with psycopg.connect(pg_url, autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM pg_tables WHERE schemaname='cagereid'").fetchone()[0] == 1


def test_a_missing_gallery_in_an_existing_database(pg_url):
    with pytest.raises(GalleryError, match="no cagereid gallery in this database"):
        open_gallery(pg_url, readonly=True)
    with open_gallery(pg_url) as g:  # a write open creates the tables (and the vector extension)
        assert g.people() == [] and g.fingerprints() == []


def test_a_large_postgres_gallery_is_matched_in_the_database_and_from_the_cache_when_it_is_down(pg_url, pg_server):
    """Above the size threshold (lowered here) live matching asks pgvector; with the database unreachable the
    cached centroids answer (same names), and people enrolled since the last reload are named by the search."""
    import psycopg

    from stream.config import StreamConfig
    from stream.gallery.search import SearchMatcher
    from stream.identify import GalleryWatcher

    rng = np.random.default_rng(4)
    centres = rng.normal(size=(30, 16)).astype(np.float32) * 3
    with open_gallery(pg_url) as g:
        for i, c in enumerate(centres[:29]):
            g.enroll(f"p{i:02d}", c + 0.3 * rng.normal(size=(3, 16)).astype(np.float32), "fp1")
    cfg = StreamConfig(accept_score=-5.0)
    w = GalleryWatcher(pg_url, "fp1", cfg, poll_s=0.05, db_search_min_people=10)
    m = w.load_now()
    assert isinstance(m.matcher, SearchMatcher) and m.accept_score == -5.0 and len(m.names) == 29
    q = centres[[3, 11, 28]] + 0.1
    res = m.matcher.match(q)
    assert [m.names[i] for i in res.best] == ["p03", "p11", "p28"] and m.matcher.db_batches == 1
    with open_gallery(pg_url) as g:  # enrolled after the load: the database knows, the cache does not yet
        g.enroll("p29", centres[29][None].repeat(3, 0), "fp1")
    res = m.matcher.match(centres[[29]])
    assert m.names[res.best[0]] == "p29"
    dbname = pg_url.split("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,))
        try:
            res = m.matcher.match(q)
            assert [m.names[i] for i in res.best] == ["p03", "p11", "p28"]  # from the cached centroids
            assert m.matcher.cache_batches == 1 and "cannot reach" in m.matcher.error
        finally:
            admin.execute(f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS true")
    # calibrated on a sample when the config has no acceptance score
    m2 = GalleryWatcher(pg_url, "fp1", StreamConfig(), db_search_min_people=10).load_now()
    assert m2.accept_score is not None and np.isfinite(m2.accept_score)
    m.matcher.close()


@pytest.mark.slow
def test_enroll_and_live_on_a_postgres_gallery(pg_url, capsys):
    """The commands with a `postgresql://` gallery: enrol two walkers (windows stored), list, and `live` names them."""
    import json

    from cagereid.cli import main

    for i in (0, 1):
        assert main(["enroll", "--name", f"walker{i}", "--source", f"synthetic:people=4,ids={i},frames=150,walks=2",
                     "--model", "stream_fakes:make_encoder", "--gallery", pg_url, "-q"]) == 0
    capsys.readouterr()
    assert main(["gallery", "list", "--json", "--gallery", pg_url]) == 0
    people = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in people] == ["walker0", "walker1"]
    assert all(p["windows"] == p["embeddings"] > 0 and not p["anonymous"] for p in people)
    code = main(["live", "--no-dashboard", "--source", "synthetic:people=4,ids=0-1,frames=150,walks=1", "--model",
                 "stream_fakes:make_encoder", "--gallery", pg_url, "--duration", "60"])
    out = capsys.readouterr().out
    assert code == 0 and "walker0" in out and "walker1" in out
