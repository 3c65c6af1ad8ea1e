"""SQLite gallery: enrol / list / remove, model fingerprint guard, and crash safety of an enrolment."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from stream.errors import GalleryError
from stream.gallery import Gallery


def emb(n, seed=0, d=8):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_enrol_list_load_remove(tmp_path):
    path = tmp_path / "g.sqlite"
    with Gallery(path) as g:
        assert g.enroll("ana", emb(4, 0), "fp1", source="walk0") == 4
        g.enroll("ben", emb(3, 1), "fp1")
        g.enroll("ana", emb(2, 2), "fp1", source="walk1")  # a second session for ana
        people = {p.name: p for p in g.people()}
        assert people["ana"].embeddings == 6 and people["ben"].embeddings == 3
        data = g.load("fp1")
        assert data.names == ["ana", "ben"] and data.embeddings.shape == (9, 8)
        np.testing.assert_array_equal(data.embeddings[data.person == 1], emb(3, 1))  # float32 bytes round trip
        assert len(np.unique(data.session[data.person == 0])) == 2
        assert g.remove("ben") == 3
        assert [p.name for p in g.people()] == ["ana"]
        with pytest.raises(GalleryError, match="nobody called"):
            g.remove("ben")


def test_refuses_embeddings_of_another_model(tmp_path):
    with Gallery(tmp_path / "g.sqlite") as g:
        g.enroll("ana", emb(2), "fp1")
        with pytest.raises(GalleryError, match="fp1"):
            g.load("fp2")
        with pytest.raises(GalleryError, match="fp1"):
            g.enroll("ben", emb(2), "fp2")
        assert [p.name for p in g.people()] == ["ana"]


def test_missing_or_corrupt_gallery_is_a_one_line_error(tmp_path):
    with pytest.raises(GalleryError, match="no such gallery"):
        Gallery(tmp_path / "none.sqlite", create=False)
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GalleryError, match="bad.sqlite"):
        Gallery(bad)


def test_crash_mid_enrolment_leaves_gallery_as_it_was(tmp_path):
    path = tmp_path / "g.sqlite"
    with Gallery(path) as g:
        g.enroll("ana", emb(3), "fp1")
        before = g.load("fp1")
    # a separate process dies (no cleanup at all) after writing 5 of 10 rows of "ben"
    code = textwrap.dedent(f"""
        import os, numpy as np
        from stream.gallery import Gallery
        g = Gallery({str(path)!r})
        def die(i):
            if i == 4:
                os._exit(9)
        g.enroll("ben", np.ones((10, 8), np.float32), "fp1", after_each=die)
    """)
    r = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert r.returncode == 9
    with Gallery(path) as g:
        assert [p.name for p in g.people()] == ["ana"]
        after = g.load("fp1")
        np.testing.assert_array_equal(after.embeddings, before.embeddings)
        g.enroll("ben", emb(2, 5), "fp1")  # and the gallery is still writable
        assert [p.name for p in g.people()] == ["ana", "ben"]


def test_data_version_changes_when_another_process_commits(tmp_path):
    path = tmp_path / "g.sqlite"
    with Gallery(path) as reader, Gallery(path) as writer:
        v0 = reader.version()
        writer.enroll("ana", emb(2), "fp1")
        assert reader.version() != v0


# --- faults --------------------------------------------------------------------------------------------------
import hashlib  # noqa: E402
import sqlite3  # noqa: E402
import threading  # noqa: E402

from stream.gallery import check_name  # noqa: E402


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_zero_byte_or_foreign_file_is_refused_and_left_as_it_is(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    for kw in ({"readonly": True}, {"create": False}, {}):
        with pytest.raises(GalleryError, match="empty file"):
            Gallery(empty, **kw)
    assert empty.stat().st_size == 0
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE accounts(id INTEGER, balance REAL)")
    before = _digest(foreign)
    for kw in ({"readonly": True}, {}):
        with pytest.raises(GalleryError, match="not a cagereid gallery"):
            Gallery(foreign, **kw)
    assert _digest(foreign) == before


def test_garbage_pages_and_a_held_lock_are_one_line_errors_naming_the_file(tmp_path):
    path = tmp_path / "g.sqlite"
    with Gallery(path) as g:
        g.enroll("ana", emb(50, d=64), "fp1")
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xa5" * (len(data) - 4096)  # every page after the first overwritten
    path.write_bytes(bytes(data))
    with pytest.raises(GalleryError, match="g.sqlite"):
        with Gallery(path, readonly=True) as g:
            g.load("fp1")
    ok = tmp_path / "ok.sqlite"
    with Gallery(ok) as g:
        g.enroll("ana", emb(2), "fp1")
    holder = sqlite3.connect(ok, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a write lock held elsewhere: reading works, writing waits, then fails
    try:
        with Gallery(ok, timeout_s=0.2) as g:
            assert [p.name for p in g.people()] == ["ana"]
            with pytest.raises(GalleryError, match="ok.sqlite.*locked"):
                g.enroll("ben", emb(2), "fp1")
            with pytest.raises(GalleryError, match="locked"):
                g.remove("ana")
        holder.execute("ROLLBACK")
        holder.execute("BEGIN EXCLUSIVE")  # nobody may even read
        with pytest.raises(GalleryError, match="ok.sqlite.*locked"):
            Gallery(ok, readonly=True, timeout_s=0.2)
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()


def test_blobs_are_length_checked_and_dimensions_must_agree(tmp_path):
    path = tmp_path / "g.sqlite"
    with Gallery(path) as g:
        g.enroll("ana", emb(3, d=8), "fp1")
        with pytest.raises(GalleryError, match="8-dimensional"):
            g.enroll("ben", emb(3, d=9), "fp1")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE embeddings SET vector = x'00010203' WHERE id = 1")
    with Gallery(path, readonly=True) as g:
        with pytest.raises(GalleryError, match="not 8 float32 values"):
            g.load("fp1")


def test_names_are_validated():
    assert check_name("  Ana-María O'Neil ") == "Ana-María O'Neil"
    for bad in ("", "x[/b]", "[bold]ana", "unknown", "...", "a\nb", "a\x1b[2J", "x" * 65):
        with pytest.raises(GalleryError):
            check_name(bad)


def test_read_only_open_cannot_write(tmp_path):
    path = tmp_path / "g.sqlite"
    with Gallery(path) as g:
        g.enroll("ana", emb(2), "fp1")
    before = _digest(path)
    with Gallery(path, readonly=True) as g:
        assert [p.name for p in g.people()] == ["ana"]
        with pytest.raises(GalleryError):
            g.enroll("ben", emb(2), "fp1")
    assert _digest(path) == before


def test_live_reload_never_waits_for_a_locked_gallery(tmp_path):
    """identify reloads in a background thread: while another process holds the write lock, `take()` answers at
    once (nothing new); once the lock is gone, the new gallery arrives."""
    from stream.config import StreamConfig
    from stream.identify import GalleryWatcher

    path = tmp_path / "g.sqlite"
    with Gallery(path) as g:
        g.enroll("ana", emb(4, 0), "fp1")
        g.enroll("ana", emb(4, 1), "fp1")
    w = GalleryWatcher(path, "fp1", StreamConfig(), poll_s=0.05)
    assert w.load_now().names == ["ana"]
    w.start()
    try:
        with Gallery(path) as g:  # another process enrols ben ...
            g.enroll("ben", emb(4, 2), "fp1")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # ... and then holds the whole file: the watcher's read has to wait
        try:
            for _ in range(10):
                assert w.take() is None  # answered at once: the waiting is the watcher thread's
                threading.Event().wait(0.05)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        for _ in range(200):
            m = w.take()
            if m is not None:
                break
            threading.Event().wait(0.05)
        assert m is not None and m.names == ["ana", "ben"]
    finally:
        w.stop()
