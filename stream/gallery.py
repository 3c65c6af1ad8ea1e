"""The gallery: enrolled people and their gait embeddings, in one SQLite file.

Tables::

    meta(key TEXT PRIMARY KEY, value TEXT)           schema version
    people(id INTEGER PRIMARY KEY, name TEXT UNIQUE, created REAL, updated REAL)
    embeddings(id INTEGER PRIMARY KEY, person INTEGER REFERENCES people ON DELETE CASCADE,
               fingerprint TEXT, dim INTEGER, vector BLOB, source TEXT, session INTEGER, created REAL)

Vectors are raw little-endian float32 (no pickle). Every embedding records the fingerprint of the model that
produced it; `Gallery.load(fingerprint)` refuses a gallery that holds embeddings of another model, because
distances between different models' embeddings mean nothing. Each enrolment is one transaction: a crash
half-way leaves the gallery exactly as it was (SQLite rolls the journal back on the next open).
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from stream.errors import GalleryError

SCHEMA = 1
_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,
                                  created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS embeddings(id INTEGER PRIMARY KEY,
    person INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,
    source TEXT NOT NULL DEFAULT '', session INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS embeddings_person ON embeddings(person);
"""


@dataclass
class GalleryData:
    names: list[str]  # (P,) person names, index = person index
    embeddings: np.ndarray  # (M, D) float32
    person: np.ndarray  # (M,) int64 index into names
    session: np.ndarray  # (M,) int64 enrolment session id (one per enrol command)


@dataclass
class PersonInfo:
    name: str
    embeddings: int
    fingerprints: list[str]
    created: float
    updated: float


class Gallery:
    """``with Gallery(path) as g: g.enroll("ana", emb, fingerprint)``. Opening creates the file if needed."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise GalleryError(f"{self.path}: no such gallery (enrol someone first: cagereid enroll)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.executescript(_DDL)
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self.db.execute("INSERT OR IGNORE INTO meta VALUES('schema', ?)", (str(SCHEMA),))
            elif int(row[0]) != SCHEMA:
                raise GalleryError(f"{self.path}: gallery schema {row[0]}, this version reads {SCHEMA}")
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self.path}: not a usable gallery database ({exc})") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writes (each one transaction) ---------------------------------------------------------------
    def enroll(self, name: str, embeddings: np.ndarray, fingerprint: str, source: str = "",
               after_each: Callable[[int], None] | None = None) -> int:
        """Add ``embeddings (N, D)`` for ``name`` (creating the person); return the number stored.

        All rows go in one transaction. ``after_each(i)`` is a test hook called after each row insert.
        """
        name = name.strip()
        if not name or name in ("unknown", "..."):
            raise GalleryError(f"{self.path}: invalid person name {name!r}")
        emb = np.asarray(embeddings, dtype="<f4")
        if emb.ndim != 2 or len(emb) == 0 or not np.isfinite(emb).all():
            raise GalleryError(f"{self.path}: enrolment of {name!r} needs finite (N, D) embeddings, got {emb.shape}")
        other = self.db.execute("SELECT DISTINCT fingerprint FROM embeddings WHERE fingerprint != ?",
                                (fingerprint,)).fetchall()
        if other:
            raise GalleryError(f"{self.path}: gallery holds embeddings of model {other[0][0]}, not {fingerprint}; "
                               "use a new gallery file for this model")
        now = time.time()
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute("INSERT INTO people(name, created, updated) VALUES(?, ?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET updated=excluded.updated", (name, now, now))
            pid = cur.execute("SELECT id FROM people WHERE name=?", (name,)).fetchone()[0]
            session = cur.execute("SELECT COALESCE(MAX(session), 0) + 1 FROM embeddings").fetchone()[0]
            for i, v in enumerate(emb):
                cur.execute("INSERT INTO embeddings(person, fingerprint, dim, vector, source, session, created) "
                            "VALUES(?, ?, ?, ?, ?, ?, ?)", (pid, fingerprint, emb.shape[1], v.tobytes(), source,
                                                            session, now))
                if after_each:
                    after_each(i)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return len(emb)

    def remove(self, name: str) -> int:
        """Delete a person and their embeddings; return how many embeddings went."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            row = cur.execute("SELECT id FROM people WHERE name=?", (name,)).fetchone()
            if row is None:
                raise GalleryError(f"{self.path}: nobody called {name!r} in the gallery")
            n = cur.execute("SELECT COUNT(*) FROM embeddings WHERE person=?", (row[0],)).fetchone()[0]
            cur.execute("DELETE FROM embeddings WHERE person=?", (row[0],))
            cur.execute("DELETE FROM people WHERE id=?", (row[0],))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return int(n)

    # --- reads -----------------------------------------------------------------------------------------
    def people(self) -> list[PersonInfo]:
        rows = self.db.execute(
            "SELECT p.name, COUNT(e.id), GROUP_CONCAT(DISTINCT e.fingerprint), p.created, p.updated "
            "FROM people p LEFT JOIN embeddings e ON e.person = p.id GROUP BY p.id ORDER BY p.name").fetchall()
        return [PersonInfo(r[0], int(r[1]), (r[2] or "").split(",") if r[2] else [], r[3], r[4]) for r in rows]

    def fingerprints(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT fingerprint FROM embeddings ORDER BY 1")]

    def version(self) -> int:
        """Changes whenever another connection commits (cheap poll for live reloads)."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def load(self, fingerprint: str) -> GalleryData:
        """All embeddings for matching; refuses embeddings made by a different model."""
        other = [fp for fp in self.fingerprints() if fp != fingerprint]
        if other:
            raise GalleryError(f"{self.path}: enrolled with model {other[0]}, but the running model is "
                               f"{fingerprint}; re-enrol with this model or pick another gallery file")
        return self._read(self.db.cursor(), fingerprint)

    def _read(self, cur: sqlite3.Cursor, fingerprint: str) -> GalleryData:
        rows = cur.execute("SELECT p.name, e.dim, e.vector, e.session FROM embeddings e JOIN people p "
                           "ON p.id = e.person WHERE e.fingerprint=? ORDER BY p.name, e.id",
                           (fingerprint,)).fetchall()
        names = sorted({r[0] for r in rows})
        index = {n: i for i, n in enumerate(names)}
        dims = {r[1] for r in rows}
        if len(dims) > 1:
            raise GalleryError(f"{self.path}: embeddings of different sizes {sorted(dims)}")
        dim = dims.pop() if dims else 0
        emb = np.array([np.frombuffer(r[2], dtype="<f4") for r in rows], dtype=np.float32).reshape(len(rows), dim)
        return GalleryData(names=names, embeddings=emb, person=np.array([index[r[0]] for r in rows], np.int64),
                           session=np.array([r[3] for r in rows], np.int64))
