"""The gallery: enrolled people and their gait embeddings, in one SQLite file.

Tables::

    meta(key TEXT PRIMARY KEY, value TEXT)           schema version
    people(id INTEGER PRIMARY KEY, name TEXT UNIQUE, created REAL, updated REAL)
    embeddings(id INTEGER PRIMARY KEY, person INTEGER REFERENCES people ON DELETE CASCADE,
               fingerprint TEXT, dim INTEGER, vector BLOB, source TEXT, session INTEGER, created REAL)

Vectors are raw little-endian float32 (no pickle). Every embedding records the fingerprint of the model that
produced it; `Gallery.load(fingerprint)` refuses a gallery that holds embeddings of another model, because
distances between different models' embeddings mean nothing. Each enrolment is one transaction (model check
included): a crash half-way leaves the gallery exactly as it was (SQLite rolls the journal back on the next open).

Only a missing file is ever created. An existing file that is not a cagereid gallery (0 bytes, another SQLite
database, garbage) is refused as it is, never rewritten; read-only users (``gallery list``, live identify) open
with ``readonly=True`` and cannot write at all. Every SQLite error is a one-line `GalleryError` naming the file.
Names are checked (`check_name`) and every vector's byte length is checked against its dimension on reading.
"""
from __future__ import annotations

import re
import sqlite3
import time
from contextlib import contextmanager
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


MAX_NAME = 64
_NAME = re.compile(r"[\w][\w .'-]*")  # letters (any script), digits, _, then also spaces . ' -


def check_name(name: str, origin: str = "name") -> str:
    """A person's name as stored: stripped, 1..64 characters of letters, digits, spaces and . _ - ' (no markup,
    no control characters), and not a label the pipeline uses itself."""
    clean = str(name).strip()
    if not clean or len(clean) > MAX_NAME or not _NAME.fullmatch(clean) or clean in ("unknown", "..."):
        raise GalleryError(f"{origin}: invalid person name {str(name)[:80]!r} (1-{MAX_NAME} letters, digits, spaces "
                           "and . _ - ' ; not 'unknown')")
    return clean


class Gallery:
    """``with Gallery(path) as g: g.enroll("ana", emb, fingerprint)``. Opening creates the file only if it does
    not exist (and ``create``); ``readonly`` opens an existing gallery for reading only."""

    def __init__(self, path: str | Path, create: bool = True, readonly: bool = False, timeout_s: float = 10.0,
                 check_same_thread: bool = True) -> None:
        self.path = Path(path)
        self.readonly = readonly
        exists = self.path.exists()
        if not exists and (readonly or not create):
            raise GalleryError(f"{self.path}: no such gallery (enrol someone first: cagereid enroll)")
        if exists and not self.path.is_file():
            raise GalleryError(f"{self.path}: not a file")
        if exists and self.path.stat().st_size == 0:
            raise GalleryError(f"{self.path}: empty file, not a cagereid gallery (left as it is; remove it or pick "
                               "another --gallery)")
        with self._errors("open"):
            if not exists:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None,
                                      check_same_thread=check_same_thread)
            try:
                self.db.execute("PRAGMA foreign_keys = ON")
                if readonly:
                    self.db.execute("PRAGMA query_only = ON")
                if not exists:
                    self.db.executescript(_DDL)
                    self.db.execute("INSERT OR IGNORE INTO meta VALUES('schema', ?)", (str(SCHEMA),))
                self._check_schema()
            except BaseException:
                self.db.close()
                raise

    @contextmanager
    def _errors(self, what: str):
        """Any SQLite failure as one line naming the file."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise GalleryError(f"{self.path}: the gallery is locked by another process ({what} gave up: {text})"
                                   ) from None
            raise GalleryError(f"{self.path}: cannot {what} the gallery ({text})") from None
        except sqlite3.Error as exc:
            raise GalleryError(f"{self.path}: not a usable gallery database ({what}: {exc})") from None
        except OSError as exc:
            raise GalleryError(f"{self.path}: {exc.strerror or exc}") from None

    def _check_schema(self) -> None:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "people", "embeddings"} <= tables:
            raise GalleryError(f"{self.path}: an SQLite file, but not a cagereid gallery (left as it is)")
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or str(row[0]) != str(SCHEMA):
            raise GalleryError(f"{self.path}: gallery schema {row[0] if row else 'missing'}, this version reads {SCHEMA}")

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

        All rows go in one transaction, after the model and dimension checks inside it. ``after_each(i)`` is a
        test hook called after each row insert.
        """
        name = check_name(name, str(self.path))
        emb = np.asarray(embeddings, dtype="<f4")
        if emb.ndim != 2 or len(emb) == 0 or emb.shape[1] == 0 or not np.isfinite(emb).all():
            raise GalleryError(f"{self.path}: enrolment of {name!r} needs finite (N, D) embeddings, got {emb.shape}")
        now = time.time()
        with self._errors("write to"):
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                other = cur.execute("SELECT DISTINCT fingerprint FROM embeddings WHERE fingerprint != ?",
                                    (fingerprint,)).fetchall()
                if other:
                    raise GalleryError(f"{self.path}: gallery holds embeddings of model {other[0][0]}, not "
                                       f"{fingerprint}; use a new gallery file for this model")
                dims = [r[0] for r in cur.execute("SELECT DISTINCT dim FROM embeddings")]
                if dims and dims != [emb.shape[1]]:
                    raise GalleryError(f"{self.path}: gallery holds {dims[0]}-dimensional embeddings, not "
                                       f"{emb.shape[1]}")
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
                if self.db.in_transaction:
                    cur.execute("ROLLBACK")
                raise
        return len(emb)

    def remove(self, name: str) -> int:
        """Delete a person and their embeddings; return how many embeddings went."""
        with self._errors("write to"):
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
                if self.db.in_transaction:
                    cur.execute("ROLLBACK")
                raise
        return int(n)

    # --- reads -----------------------------------------------------------------------------------------
    def people(self) -> list[PersonInfo]:
        with self._errors("read"):
            rows = self.db.execute(
                "SELECT p.name, COUNT(e.id), GROUP_CONCAT(DISTINCT e.fingerprint), p.created, p.updated "
                "FROM people p LEFT JOIN embeddings e ON e.person = p.id GROUP BY p.id ORDER BY p.name").fetchall()
            return [PersonInfo(str(r[0]), int(r[1]), (r[2] or "").split(",") if r[2] else [], float(r[3]), float(r[4]))
                    for r in rows]

    def fingerprints(self) -> list[str]:
        with self._errors("read"):
            return [r[0] for r in self.db.execute("SELECT DISTINCT fingerprint FROM embeddings ORDER BY 1")]

    def version(self) -> int:
        """Changes whenever another connection commits (cheap poll for live reloads)."""
        with self._errors("read"):
            return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def load(self, fingerprint: str) -> GalleryData:
        """All embeddings for matching; refuses embeddings made by a different model (in one read transaction)."""
        with self._errors("read"):
            cur = self.db.cursor()
            cur.execute("BEGIN")
            try:
                other = [r[0] for r in cur.execute("SELECT DISTINCT fingerprint FROM embeddings WHERE fingerprint != ?",
                                                   (fingerprint,))]
                if other:
                    raise GalleryError(f"{self.path}: enrolled with model {other[0]}, but the running model is "
                                       f"{fingerprint}; re-enrol with this model or pick another gallery file")
                return self._read(cur, fingerprint)
            finally:
                if self.db.in_transaction:
                    cur.execute("COMMIT")

    def _read(self, cur: sqlite3.Cursor, fingerprint: str) -> GalleryData:
        rows = cur.execute("SELECT p.name, e.dim, e.vector, e.session FROM embeddings e JOIN people p "
                           "ON p.id = e.person WHERE e.fingerprint=? ORDER BY p.name, e.id",
                           (fingerprint,)).fetchall()
        names = sorted({str(r[0]) for r in rows})
        index = {n: i for i, n in enumerate(names)}
        dims = {r[1] for r in rows}
        if len(dims) > 1:
            raise GalleryError(f"{self.path}: embeddings of different sizes {sorted(dims)}")
        dim = dims.pop() if dims else 0
        if rows and (not isinstance(dim, int) or not 0 < dim <= 65536):
            raise GalleryError(f"{self.path}: bad embedding size {dim!r}")
        bad = sum(1 for r in rows if not isinstance(r[2], bytes) or len(r[2]) != 4 * dim)
        if bad:
            raise GalleryError(f"{self.path}: {bad} embedding(s) are not {dim} float32 values (damaged gallery; "
                               "remove and re-enrol the people concerned)")
        emb = np.array([np.frombuffer(r[2], dtype="<f4") for r in rows], dtype=np.float32).reshape(len(rows), dim)
        if not np.isfinite(emb).all():
            raise GalleryError(f"{self.path}: embeddings hold NaN or infinite values (damaged gallery)")
        return GalleryData(names=names, embeddings=emb, person=np.array([index[str(r[0])] for r in rows], np.int64),
                           session=np.array([int(r[3]) for r in rows], np.int64))
