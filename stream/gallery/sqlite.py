"""The embedded gallery: one SQLite file (the default ``--gallery gallery.sqlite``).

Tables (schema 2)::

    meta(key TEXT PRIMARY KEY, value TEXT)     schema, changes (bumped by every write), visitors (last visitor id)
    people(id INTEGER PRIMARY KEY, name TEXT UNIQUE, created REAL, updated REAL, anonymous INTEGER)
    embeddings(id INTEGER PRIMARY KEY, person INTEGER REFERENCES people ON DELETE CASCADE,
               fingerprint TEXT, dim INTEGER, vector BLOB, source TEXT, session INTEGER, created REAL,
               wf INTEGER, wj INTEGER, win BLOB)            win: the input window, wf x wj x 3 float32, or NULL

Vectors and windows are raw little-endian float32 (no pickle). Each write is one transaction (model check
included): a crash half-way leaves the gallery exactly as it was (SQLite rolls the journal back on the next open).
A schema-1 gallery (before visitor ids and stored windows) is migrated in one transaction by the first open
that may write; read-only opens read it as it is.

Only a missing file is ever created. An existing file that is not a cagereid gallery (0 bytes, another SQLite
database, garbage) is refused as it is, never rewritten; read-only users (``gallery list``, live identify) open
with ``readonly=True`` and cannot write at all. Every SQLite error is a one-line `GalleryError` naming the file.
Names are checked (`check_name`) and every vector's byte length is checked against its dimension on reading.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stream.errors import GalleryError
from stream.gallery.base import (
    VISITOR_PREFIX,
    BaseGallery,
    GalleryData,
    PersonInfo,
    PersonRecord,
    _stale,
    check_name,
    check_rows,
    other_model_error,
    window_from,
)

SCHEMA = 2
_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,
                                  created REAL NOT NULL, updated REAL NOT NULL,
                                  anonymous INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS embeddings(id INTEGER PRIMARY KEY,
    person INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,
    source TEXT NOT NULL DEFAULT '', session INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL,
    wf INTEGER, wj INTEGER, win BLOB);
CREATE INDEX IF NOT EXISTS embeddings_person ON embeddings(person);
INSERT OR IGNORE INTO meta VALUES('changes', '0');
INSERT OR IGNORE INTO meta VALUES('visitors', '0');
"""
_MIGRATE_1_2 = """
ALTER TABLE people ADD COLUMN anonymous INTEGER NOT NULL DEFAULT 0;
ALTER TABLE embeddings ADD COLUMN wf INTEGER;
ALTER TABLE embeddings ADD COLUMN wj INTEGER;
ALTER TABLE embeddings ADD COLUMN win BLOB;
"""


class SQLiteGallery(BaseGallery):
    """``with Gallery(path) as g: g.enroll("ana", emb, fingerprint)``. Opening creates the file only if it does
    not exist (and ``create``); ``readonly`` opens an existing gallery for reading only."""

    def __init__(self, path: str | Path, create: bool = True, readonly: bool = False, timeout_s: float = 10.0,
                 check_same_thread: bool = True) -> None:
        self.path = Path(path)
        self.origin = str(self.path)
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
                    self.db.executescript("BEGIN IMMEDIATE;" + _DDL + f"INSERT OR IGNORE INTO meta VALUES('schema', "
                                          f"'{SCHEMA}'); COMMIT;")
                self._check_schema()
                if self.schema < SCHEMA and not readonly:
                    self._migrate()
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
        if row is None or str(row[0]) not in ("1", str(SCHEMA)):
            raise GalleryError(f"{self.path}: gallery schema {row[0] if row else 'missing'}, this version reads "
                               f"1 and {SCHEMA}")
        self.schema = int(row[0])

    def _migrate(self) -> None:
        """Schema 1 -> 2 in one transaction (another process may have done it meanwhile: checked inside)."""
        with self._write() as cur:
            if cur.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == "1":
                for stmt in _MIGRATE_1_2.strip().split(";"):
                    if stmt.strip():
                        cur.execute(stmt)
                cur.execute("INSERT OR IGNORE INTO meta VALUES('changes', '0')")
                cur.execute("INSERT OR IGNORE INTO meta VALUES('visitors', '0')")
                cur.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA),))
        self.schema = SCHEMA

    def close(self) -> None:
        self.db.close()

    # --- writes (each one transaction) ---------------------------------------------------------------
    @contextmanager
    def _write(self, what: str = "write to", bump: bool = False):
        """One write transaction (``BEGIN IMMEDIATE``: writers queue up); ``bump`` counts a visible change."""
        with self._errors(what):
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                if bump:
                    cur.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='changes'")
                cur.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    cur.execute("ROLLBACK")
                raise

    def _model_check(self, cur, fingerprint: str, dim: int, what: str) -> None:
        fps = [r[0] for r in cur.execute("SELECT DISTINCT fingerprint FROM embeddings")]
        if fps and fingerprint not in fps:
            raise other_model_error(self.origin, fps[0], fingerprint, what)
        dims = [r[0] for r in cur.execute("SELECT DISTINCT dim FROM embeddings WHERE fingerprint=?", (fingerprint,))]
        if dims and dims != [dim]:
            raise GalleryError(f"{self.path}: gallery holds {dims[0]}-dimensional embeddings, not {dim}")

    def enroll(self, name: str, embeddings: np.ndarray, fingerprint: str, source: str = "", windows=None,
               anonymous: bool = False, after_each: Callable[[int], None] | None = None) -> int:
        """Add ``embeddings (N, D)`` (and their input ``windows (N, f, J, 3)``) for ``name``, creating the person;
        return the number stored. One transaction, after the model and dimension checks inside it.
        ``after_each(i)`` is a test hook called after each row insert."""
        name = check_name(name, str(self.path))
        emb, win = check_rows(self.origin, name, embeddings, windows)
        now = time.time()
        with self._write(bump=True) as cur:
            self._model_check(cur, fingerprint, emb.shape[1], "this model")
            cur.execute("INSERT INTO people(name, created, updated, anonymous) VALUES(?, ?, ?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET updated=excluded.updated, "
                        "anonymous=MIN(anonymous, excluded.anonymous)", (name, now, now, int(bool(anonymous))))
            pid = cur.execute("SELECT id FROM people WHERE name=?", (name,)).fetchone()[0]
            session = cur.execute("SELECT COALESCE(MAX(session), 0) + 1 FROM embeddings").fetchone()[0]
            for i, v in enumerate(emb):
                w = win[i] if win is not None else None
                cur.execute("INSERT INTO embeddings(person, fingerprint, dim, vector, source, session, created, wf, "
                            "wj, win) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (pid, fingerprint, emb.shape[1], v.tobytes(), source, session, now,
                             None if w is None else w.shape[0], None if w is None else w.shape[1],
                             None if w is None else w.tobytes()))
                if after_each:
                    after_each(i)
        return len(emb)

    def remove(self, name: str) -> int:
        """Delete a person and their embeddings; return how many embeddings went."""
        with self._write(bump=True) as cur:
            row = cur.execute("SELECT id FROM people WHERE name=?", (name,)).fetchone()
            if row is None:
                raise GalleryError(f"{self.path}: nobody called {name!r} in the gallery")
            n = cur.execute("SELECT COUNT(*) FROM embeddings WHERE person=?", (row[0],)).fetchone()[0]
            cur.execute("DELETE FROM embeddings WHERE person=?", (row[0],))
            cur.execute("DELETE FROM people WHERE id=?", (row[0],))
        return int(n)

    def next_visitor_name(self) -> str:
        """A fresh ``visitor-N``: the counter in meta goes up in its own transaction (unique across processes)."""
        with self._write() as cur:
            cur.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='visitors'")
            n = int(cur.execute("SELECT value FROM meta WHERE key='visitors'").fetchone()[0])
        return f"{VISITOR_PREFIX}{n}"

    def purge_anonymous(self, older_than_s: float) -> int:
        """Delete anonymous people not updated for ``older_than_s`` seconds (retention); return how many."""
        cutoff = time.time() - float(older_than_s)
        with self._write(bump=True) as cur:
            ids = [r[0] for r in cur.execute("SELECT id FROM people WHERE anonymous != 0 AND updated < ?", (cutoff,))]
            for pid in ids:
                cur.execute("DELETE FROM embeddings WHERE person=?", (pid,))
                cur.execute("DELETE FROM people WHERE id=?", (pid,))
        return len(ids)

    def reembed(self, embed, fingerprint: str, f: int, J: int, batch: int = 256, progress=None):
        """Re-encode every stored window with ``embed`` and store the results under ``fingerprint`` (one write
        transaction at the end; the encoding runs before it, so readers are never held up). Returns the number
        of embeddings re-made and the people who have no stored window (enrolled before windows were kept:
        they keep their old embeddings, which the new model does not match, until they are re-enrolled)."""
        with self._errors("read"):
            ids = [r[0] for r in self.db.execute("SELECT id FROM embeddings WHERE win IS NOT NULL ORDER BY id")]
        new: list[tuple[int, bytes]] = []
        dim = None
        for start in range(0, len(ids), batch):
            chunk = ids[start:start + batch]
            with self._errors("read"):
                rows = self.db.execute(f"SELECT id, wf, wj, win FROM embeddings WHERE id IN ({','.join('?' * len(chunk))})"
                                       " ORDER BY id", chunk).fetchall()
            wins = [window_from(self.origin, r[1], r[2], r[3]) for r in rows]
            for w in wins:
                if w.shape[:2] != (f, J):
                    raise GalleryError(f"{self.path}: stored windows are {w.shape[0]} frames x {w.shape[1]} joints, "
                                       f"the model takes {f} x {J}; re-enrol with that model instead")
            out = np.asarray(embed(np.stack(wins)), dtype="<f4")
            if out.shape[0] != len(rows) or not np.isfinite(out).all():
                raise GalleryError(f"{self.path}: the model gave {out.shape} non-finite or missing embeddings")
            dim = out.shape[1]
            new += [(r[0], v.tobytes()) for r, v in zip(rows, out)]
            if progress:
                progress(len(new), len(ids))
        if not new:
            raise GalleryError(f"{self.path}: no stored windows to re-embed (everybody was enrolled before windows "
                               "were kept): re-enrol them with the new model")
        with self._write(bump=True) as cur:
            cur.executemany("UPDATE embeddings SET fingerprint=?, dim=?, vector=? WHERE id=?",
                            [(fingerprint, dim, v, i) for i, v in new])
            stale = [r[0] for r in cur.execute(
                "SELECT name FROM people p WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.person = p.id AND "
                "e.fingerprint = ?) ORDER BY name", (fingerprint,))]
        return len(new), stale

    def import_people(self, records, merge: bool = False, progress=None) -> int:
        """Add `PersonRecord`s in one transaction (`gallery copy`); a non-empty gallery needs ``merge`` and then
        takes only new names (a name it has already is an error: nothing is written)."""
        n = 0
        with self._write(bump=True) as cur:
            if not merge and cur.execute("SELECT COUNT(*) FROM people").fetchone()[0]:
                raise GalleryError(f"{self.path}: not empty (add --merge to add the people to it)")
            base = cur.execute("SELECT COALESCE(MAX(session), 0) FROM embeddings").fetchone()[0]
            sessions: dict[int, int] = {}
            known: dict[str, int] = {}  # fingerprint -> embedding size
            for rec in records:
                name = check_name(rec.name, self.origin)
                if cur.execute("SELECT 1 FROM people WHERE name=?", (name,)).fetchone():
                    raise GalleryError(f"{self.path}: already holds {name!r} (nothing copied)")
                for r in rec.rows:
                    fp = r["fingerprint"]
                    if fp not in known:
                        have = cur.execute("SELECT dim FROM embeddings WHERE fingerprint=? LIMIT 1", (fp,)).fetchone()
                        known[fp] = have[0] if have else len(r["vector"])
                    if known[fp] != len(r["vector"]):
                        raise GalleryError(f"{self.path}: {name!r}: embeddings of model {fp} of another size")
                cur.execute("INSERT INTO people(name, created, updated, anonymous) VALUES(?, ?, ?, ?)",
                            (name, rec.created, rec.updated, int(rec.anonymous)))
                pid = cur.lastrowid
                for r in rec.rows:
                    s = sessions.setdefault(int(r["session"]), base + len(sessions) + 1)
                    v, w = np.asarray(r["vector"], "<f4"), r.get("window")
                    w = None if w is None else np.asarray(w, "<f4")
                    cur.execute("INSERT INTO embeddings(person, fingerprint, dim, vector, source, session, created, "
                                "wf, wj, win) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                (pid, r["fingerprint"], len(v), v.tobytes(), r["source"], s, r["created"],
                                 None if w is None else w.shape[0], None if w is None else w.shape[1],
                                 None if w is None else w.tobytes()))
                n += 1
                if progress:
                    progress(n)
        return n

    # --- reads -----------------------------------------------------------------------------------------
    def _anon(self, alias: str = "p") -> str:
        return f"{alias}.anonymous" if self.schema >= 2 else "0"

    def people(self) -> list[PersonInfo]:
        win = "COUNT(e.win)" if self.schema >= 2 else "0"
        with self._errors("read"):
            rows = self.db.execute(
                f"SELECT p.name, COUNT(e.id), GROUP_CONCAT(DISTINCT e.fingerprint), p.created, p.updated, "
                f"{self._anon()}, {win} FROM people p LEFT JOIN embeddings e ON e.person = p.id GROUP BY p.id "
                "ORDER BY p.name").fetchall()
            return [PersonInfo(str(r[0]), int(r[1]), (r[2] or "").split(",") if r[2] else [], float(r[3]),
                               float(r[4]), bool(r[5]), int(r[6])) for r in rows]

    def count_people(self) -> int:
        with self._errors("read"):
            return int(self.db.execute("SELECT COUNT(*) FROM people").fetchone()[0])

    def fingerprints(self) -> list[str]:
        with self._errors("read"):
            return [r[0] for r in self.db.execute("SELECT DISTINCT fingerprint FROM embeddings ORDER BY 1")]

    def version(self) -> int:
        """A number that changes whenever anybody commits a change of people or embeddings (cheap: one row)."""
        with self._errors("read"):
            if self.schema < SCHEMA:  # a read-only open of a schema-1 file (a writer may migrate it meanwhile)
                self.schema = int(self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0])
            if self.schema < SCHEMA:
                return -int(self.db.execute("PRAGMA data_version").fetchone()[0])
            return int(self.db.execute("SELECT value FROM meta WHERE key='changes'").fetchone()[0])

    def load(self, fingerprint: str) -> GalleryData:
        """All embeddings of model ``fingerprint`` for matching, in one read transaction; refuses a gallery that
        holds only another model's embeddings (naming `gallery reembed`)."""
        with self._errors("read"):
            cur = self.db.cursor()
            cur.execute("BEGIN")
            try:
                fps = [r[0] for r in cur.execute("SELECT DISTINCT fingerprint FROM embeddings")]
                if fps and fingerprint not in fps:
                    raise other_model_error(self.origin, fps[0], fingerprint, "the running model")
                return self._read(cur, fingerprint)
            finally:
                if self.db.in_transaction:
                    cur.execute("COMMIT")

    def _read(self, cur: sqlite3.Cursor, fingerprint: str) -> GalleryData:
        rows = cur.execute("SELECT p.name, e.dim, e.vector, e.session FROM embeddings e JOIN people p "
                           "ON p.id = e.person WHERE e.fingerprint=? ORDER BY p.name, e.id",
                           (fingerprint,)).fetchall()
        everyone = {str(r[0]): bool(r[1]) for r in cur.execute(f"SELECT p.name, {self._anon()} FROM people p")}
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
                           session=np.array([int(r[3]) for r in rows], np.int64),
                           anonymous=np.array([everyone.get(n, False) for n in names], bool),
                           stale=_stale(list(everyone), names))

    def export(self) -> Iterator[PersonRecord]:
        """Every person with all their rows (any model), for `gallery copy`; one read transaction."""
        win = "e.wf, e.wj, e.win" if self.schema >= 2 else "NULL, NULL, NULL"
        with self._errors("read"):
            cur = self.db.cursor()
            cur.execute("BEGIN")
            try:
                people = cur.execute(f"SELECT id, name, {self._anon('people')}, created, updated FROM people "
                                     "ORDER BY name").fetchall()
                for pid, name, anon, created, updated in people:
                    rows = []
                    for fp, dim, vec, source, session, ecreated, wf, wj, w in self.db.execute(
                            f"SELECT e.fingerprint, e.dim, e.vector, e.source, e.session, e.created, {win} "
                            "FROM embeddings e WHERE e.person=? ORDER BY e.id", (pid,)):
                        if not isinstance(vec, bytes) or len(vec) != 4 * dim:
                            raise GalleryError(f"{self.path}: an embedding of {name!r} is damaged")
                        rows.append({"fingerprint": fp, "vector": np.frombuffer(vec, "<f4"), "source": source,
                                     "session": session, "created": ecreated,
                                     "window": window_from(self.origin, wf, wj, w)})
                    yield PersonRecord(str(name), bool(anon), float(created), float(updated), rows)
            finally:
                if self.db.in_transaction:
                    cur.execute("COMMIT")


Gallery = SQLiteGallery  # the name the code used before there were two backends
