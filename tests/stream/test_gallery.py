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
