"""The shared gallery: PostgreSQL with pgvector (``--gallery postgresql://user@host/db``), via psycopg 3.

Everything lives in the schema ``cagereid`` of the database (created on the first write open, with
``CREATE EXTENSION IF NOT EXISTS vector``)::

    meta(key, value)                  kind, schema, changes (bumped by every write: the watchers' `version()`)
    models(fingerprint, dim, n)       which models' embeddings the gallery holds (cheap model checks)
    people(id, name UNIQUE, anonymous, created, updated)
    embeddings(id, person -> people ON DELETE CASCADE, fingerprint, dim, vec vector, source, session, created,
               wf, wj, win bytea)     win: the input window, wf x wj x 3 little-endian float32, or NULL
    centroids(person, fingerprint, dim, n, mean vector, nmean vector)   per person and model: the mean embedding
                                      and the normalised mean of the normalised ones (cosine)
    sequences sessions, visitors

Nearest-person search (`search`) runs in the database on ``centroids``, with a pgvector HNSW index per
embedding size on ``mean`` (L2) for ``metric=euclidean`` (the live default); ``metric=cosine`` scans ``nmean``
(exact, no index). Both follow the ``reduce=centroid`` rule of `cages.matcher.Matcher`, so scores are the
matcher's. ``reduce=nearest`` searches exactly over a load.

Every write is one transaction that first bumps ``meta.changes`` (a row lock: writers queue up, so the model
check inside is race-free); a crash or a dropped connection rolls it back. Every database error is a one-line
`GalleryError` naming the URL without its password; a broken connection is re-opened on the next call.
Read-only opens set ``default_transaction_read_only`` so they cannot write at all.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from stream.errors import GalleryError
from stream.gallery.base import (
    VISITOR_PREFIX,
    BaseGallery,
    GalleryData,
    PersonInfo,
    PersonRecord,
    SearchResult,
    _stale,
    check_name,
    check_rows,
    other_model_error,
    window_from,
)

PG_SCHEMA = 1
KIND = "cagereid gallery"
_DDL = f"""
CREATE SCHEMA cagereid;
CREATE TABLE cagereid.meta(key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE cagereid.models(fingerprint text PRIMARY KEY, dim integer NOT NULL, n bigint NOT NULL);
CREATE TABLE cagereid.people(id bigserial PRIMARY KEY, name text UNIQUE NOT NULL,
    anonymous boolean NOT NULL DEFAULT false, created double precision NOT NULL, updated double precision NOT NULL);
CREATE TABLE cagereid.embeddings(id bigserial PRIMARY KEY,
    person bigint NOT NULL REFERENCES cagereid.people(id) ON DELETE CASCADE,
    fingerprint text NOT NULL, dim integer NOT NULL, vec vector NOT NULL, source text NOT NULL DEFAULT '',
    session bigint NOT NULL, created double precision NOT NULL, wf integer, wj integer, win bytea);
CREATE INDEX embeddings_person ON cagereid.embeddings(person);
CREATE TABLE cagereid.centroids(person bigint NOT NULL REFERENCES cagereid.people(id) ON DELETE CASCADE,
    fingerprint text NOT NULL, dim integer NOT NULL, n integer NOT NULL, mean vector NOT NULL,
    nmean vector NOT NULL, PRIMARY KEY(person, fingerprint));
CREATE SEQUENCE cagereid.sessions;
CREATE SEQUENCE cagereid.visitors;
INSERT INTO cagereid.meta VALUES ('kind', '{KIND}'), ('schema', '{PG_SCHEMA}'), ('changes', '0');
"""
_CENTROIDS = """INSERT INTO cagereid.centroids(person, fingerprint, dim, n, mean, nmean)
    SELECT person, fingerprint, min(dim), count(*), avg(vec), l2_normalize(avg(l2_normalize(vec)))
    FROM cagereid.embeddings WHERE {where} GROUP BY person, fingerprint
    ON CONFLICT (person, fingerprint) DO UPDATE SET dim=excluded.dim, n=excluded.n, mean=excluded.mean,
    nmean=excluded.nmean"""


class Vec:
    """A float32 vector in pgvector's binary format (int16 dim, int16 0, big-endian float32s): sent as such by
    the dumper `_register` installs on each connection (exact, and ~70x faster than pgvector's text input)."""

    __slots__ = ("data",)

    def __init__(self, v: np.ndarray) -> None:
        a = np.asarray(v, ">f4").ravel()
        self.data = len(a).to_bytes(2, "big") + b"\0\0" + a.tobytes()


def _register(db) -> bool:
    """Teach this connection to send `Vec` as pgvector's ``vector`` (binary); False if pgvector is missing."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(db, "vector")
    if info is None:
        return False
    info.register(db)

    class VecDumper(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj: Vec) -> bytes:
            return obj.data

    db.adapters.register_dumper(Vec, VecDumper)
    return True


def _vectors(blobs: list[bytes], dim: int, origin: str) -> np.ndarray:
    """``vector_send`` results (int16 dim, int16 0, dim big-endian float32) as one ``(M, dim)`` float32 array."""
    if not blobs:
        return np.zeros((0, dim), np.float32)
    raw = b"".join(blobs)
    if len(raw) != len(blobs) * 4 * (dim + 1):
        raise GalleryError(f"{origin}: stored embeddings are not all {dim}-dimensional (damaged gallery)")
    out = np.frombuffer(raw, ">f4").reshape(len(blobs), dim + 1)[:, 1:].astype(np.float32)
    if not np.isfinite(out).all():
        raise GalleryError(f"{origin}: embeddings hold NaN or infinite values (damaged gallery)")
    return out


class PostgresGallery(BaseGallery):
    """``with open_gallery("postgresql://...") as g: ...``: the same methods as the SQLite gallery."""

    supports_db_search = True

    def __init__(self, url: str, create: bool = True, readonly: bool = False, connect_timeout_s: float = 5.0,
                 **_sqlite_only) -> None:
        from stream.gallery import redact

        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise GalleryError(f"{redact(url)}: a PostgreSQL gallery needs psycopg: pip install 'cagereid[postgres]'"
                               ) from None
        self.url, self.origin, self.readonly = url, redact(url), readonly
        self.connect_timeout_s = connect_timeout_s
        self._db = None
        self._vec = False
        self._indexed: set[int] = set()
        with self._errors("open"):
            db = self._conn()
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(hashtext('cagereid gallery schema'))")
                if db.execute("SELECT 1 FROM pg_namespace WHERE nspname='cagereid'").fetchone() is None:
                    if readonly or not create:
                        raise GalleryError(f"{self.origin}: no cagereid gallery in this database (enrol someone "
                                           f"first: cagereid enroll --gallery URL)")
                    self._create(db)
                self._check_schema(db)
            if not self._vec:
                self._vec = _register(db)

    # --- connection and errors -------------------------------------------------------------------------
    def _conn(self):
        import psycopg

        if self._db is None or self._db.closed or self._db.broken:
            if self._db is not None:
                self._db.close()
            self._db = None
            options = "-c default_transaction_read_only=on" if self.readonly else ""
            self._db = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self.connect_timeout_s)),
                                       application_name="cagereid", options=options)
            self._vec = _register(self._db)
        return self._db

    @contextmanager
    def _errors(self, what: str):
        import psycopg

        try:
            yield
        except psycopg.errors.ReadOnlySqlTransaction:
            raise GalleryError(f"{self.origin}: opened read-only, cannot {what} the gallery") from None
        except psycopg.OperationalError as exc:
            if self._db is not None and (self._db.closed or self._db.broken):
                self._db.close()
                self._db = None
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise GalleryError(f"{self.origin}: cannot reach the gallery database ({what}: {text})") from None
        except psycopg.Error as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise GalleryError(f"{self.origin}: database error ({what}: {text})") from None

    def _create(self, db) -> None:
        try:
            db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except Exception as exc:  # noqa: BLE001 - psycopg's own errors: the one line below
            raise GalleryError(f"{self.origin}: pgvector is not available in this database ({str(exc).strip()[:200]});"
                               " install it and run CREATE EXTENSION vector as the database owner") from None
        for stmt in _DDL.strip().split(";"):
            if stmt.strip():
                db.execute(stmt)

    def _check_schema(self, db) -> None:
        tables = {r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname='cagereid'")}
        need = {"meta", "models", "people", "embeddings", "centroids"}
        meta = dict(db.execute("SELECT key, value FROM cagereid.meta").fetchall()) if "meta" in tables else {}
        if not need <= tables or meta.get("kind") != KIND:
            raise GalleryError(f"{self.origin}: the database has a schema 'cagereid' that is not a cagereid gallery "
                               "(left as it is)")
        if meta.get("schema") != str(PG_SCHEMA):
            raise GalleryError(f"{self.origin}: gallery schema {meta.get('schema')}, this version reads {PG_SCHEMA}")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # --- writes ------------------------------------------------------------------------------------------
    @contextmanager
    def _write(self, what: str = "write to", bump: bool = True):
        with self._errors(what):
            db = self._conn()
            with db.transaction():
                if bump:
                    db.execute("UPDATE cagereid.meta SET value = (value::bigint + 1)::text WHERE key='changes'")
                yield db

    def _models(self, db) -> dict[str, int]:
        return dict(db.execute("SELECT fingerprint, dim FROM cagereid.models WHERE n > 0 ORDER BY 1").fetchall())

    def _index(self, db, dim: int) -> None:
        """The HNSW index over the centroids of ``dim``-dimensional models (made with the first such person), for
        ``metric=euclidean`` (the live default); cosine searches scan the centroids (exact)."""
        if dim in self._indexed:
            return
        have = {r[0] for r in db.execute("SELECT indexname FROM pg_indexes WHERE schemaname='cagereid'")}
        for name, col, ops in ((f"centroids_l2_{dim}", "mean", "vector_l2_ops"),):
            if name not in have:
                db.execute("SET LOCAL maintenance_work_mem = '512MB'")  # a 100,000 x 787 graph fits: fast build
                db.execute(f"CREATE INDEX {name} ON cagereid.centroids USING hnsw (({col}::vector({int(dim)})) {ops})"
                           f" WHERE dim = {int(dim)}")
        self._indexed.add(dim)

    def _count_models(self, db, where: str, params) -> list[tuple[str, int]]:
        return db.execute(f"SELECT fingerprint, count(*) FROM cagereid.embeddings WHERE {where} GROUP BY 1",
                          params).fetchall()

    def _uncount(self, db, counts) -> None:
        for fp, n in counts:
            db.execute("UPDATE cagereid.models SET n = n - %s WHERE fingerprint = %s", (n, fp))

    def enroll(self, name: str, embeddings: np.ndarray, fingerprint: str, source: str = "", windows=None,
               anonymous: bool = False, after_each: Callable[[int], None] | None = None) -> int:
        """Add ``embeddings (N, D)`` (and their ``windows (N, f, J, 3)``) for ``name`` in one transaction: model
        check, person, rows, the person's centroid and the model count commit together or not at all."""
        name = check_name(name, self.origin)
        emb, win = check_rows(self.origin, name, embeddings, windows)
        dim = emb.shape[1]
        now = time.time()
        with self._write() as db:
            models = self._models(db)
            if models and fingerprint not in models:
                raise other_model_error(self.origin, next(iter(models)), fingerprint, "this model")
            if fingerprint in models and models[fingerprint] != dim:
                raise GalleryError(f"{self.origin}: gallery holds {models[fingerprint]}-dimensional embeddings, not "
                                   f"{dim}")
            pid = db.execute("INSERT INTO cagereid.people(name, anonymous, created, updated) VALUES (%s, %s, %s, %s) "
                             "ON CONFLICT (name) DO UPDATE SET updated = excluded.updated, "
                             "anonymous = people.anonymous AND excluded.anonymous RETURNING id",
                             (name, bool(anonymous), now, now)).fetchone()[0]
            session = db.execute("SELECT nextval('cagereid.sessions')").fetchone()[0]
            rows = [(pid, fingerprint, dim, Vec(v), source, session, now,
                     None if win is None else win.shape[1], None if win is None else win.shape[2],
                     None if win is None else win[i].tobytes()) for i, v in enumerate(emb)]
            sql = ("INSERT INTO cagereid.embeddings(person, fingerprint, dim, vec, source, session, created, wf, wj, "
                   "win) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
            if after_each is None:
                db.cursor().executemany(sql, rows)
            else:
                for i, r in enumerate(rows):
                    db.execute(sql, r)
                    after_each(i)
            db.execute("INSERT INTO cagereid.models VALUES (%s, %s, %s) ON CONFLICT (fingerprint) DO UPDATE "
                       "SET n = models.n + excluded.n, dim = excluded.dim", (fingerprint, dim, len(emb)))
            db.execute(_CENTROIDS.format(where="person = %s AND fingerprint = %s"), (pid, fingerprint))
            self._index(db, dim)
        return len(emb)

    def remove(self, name: str) -> int:
        with self._write() as db:
            row = db.execute("SELECT id FROM cagereid.people WHERE name = %s", (name,)).fetchone()
            if row is None:
                raise GalleryError(f"{self.origin}: nobody called {name!r} in the gallery")
            counts = self._count_models(db, "person = %s", (row[0],))
            self._uncount(db, counts)
            db.execute("DELETE FROM cagereid.people WHERE id = %s", (row[0],))  # rows and centroids cascade
        return int(sum(n for _, n in counts))

    def next_visitor_name(self) -> str:
        with self._write(bump=False) as db:
            n = db.execute("SELECT nextval('cagereid.visitors')").fetchone()[0]
        return f"{VISITOR_PREFIX}{n}"

    def purge_anonymous(self, older_than_s: float) -> int:
        cutoff = time.time() - float(older_than_s)
        with self._write() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM cagereid.people WHERE anonymous AND updated < %s",
                                            (cutoff,))]
            if ids:
                self._uncount(db, self._count_models(db, "person = ANY(%s)", (ids,)))
                db.execute("DELETE FROM cagereid.people WHERE id = ANY(%s)", (ids,))
        return len(ids)

    def _refresh(self, db) -> None:
        """Recompute the model counts and every centroid (after a bulk change)."""
        db.execute("DELETE FROM cagereid.models")
        db.execute("INSERT INTO cagereid.models SELECT fingerprint, min(dim), count(*) FROM cagereid.embeddings "
                   "GROUP BY fingerprint")
        db.execute("DELETE FROM cagereid.centroids")
        db.execute(_CENTROIDS.format(where="true"))
        for (dim,) in db.execute("SELECT DISTINCT dim FROM cagereid.models").fetchall():
            self._index(db, dim)
        db.execute("ANALYZE cagereid.centroids")

    def reembed(self, embed, fingerprint: str, f: int, J: int, batch: int = 256, progress=None):
        """As `SQLiteGallery.reembed`: encode every stored window (outside any write), then store all the new
        embeddings, centroids and counts in one transaction."""
        with self._errors("read"):
            db = self._conn()
            ids = [r[0] for r in db.execute("SELECT id FROM cagereid.embeddings WHERE win IS NOT NULL ORDER BY id")]
        new: list[tuple[str, int, str, int]] = []
        dim = None
        for start in range(0, len(ids), batch):
            chunk = ids[start:start + batch]
            with self._errors("read"):
                rows = self._conn().execute("SELECT id, wf, wj, win FROM cagereid.embeddings WHERE id = ANY(%s) "
                                            "ORDER BY id", (chunk,)).fetchall()
            wins = [window_from(self.origin, r[1], r[2], r[3]) for r in rows]
            for w in wins:
                if w.shape[:2] != (f, J):
                    raise GalleryError(f"{self.origin}: stored windows are {w.shape[0]} frames x {w.shape[1]} joints, "
                                       f"the model takes {f} x {J}; re-enrol with that model instead")
            out = np.asarray(embed(np.stack(wins)), dtype=np.float32)
            if out.shape[0] != len(rows) or not np.isfinite(out).all():
                raise GalleryError(f"{self.origin}: the model gave {out.shape} non-finite or missing embeddings")
            dim = out.shape[1]
            new += [(fingerprint, dim, Vec(v), r[0]) for r, v in zip(rows, out)]
            if progress:
                progress(len(new), len(ids))
        if not new:
            raise GalleryError(f"{self.origin}: no stored windows to re-embed (everybody was enrolled before windows "
                               "were kept): re-enrol them with the new model")
        with self._write() as db:
            db.cursor().executemany("UPDATE cagereid.embeddings SET fingerprint = %s, dim = %s, vec = %s "
                                    "WHERE id = %s", new)
            self._refresh(db)
            stale = [r[0] for r in db.execute(
                "SELECT name FROM cagereid.people p WHERE NOT EXISTS (SELECT 1 FROM cagereid.embeddings e WHERE "
                "e.person = p.id AND e.fingerprint = %s) ORDER BY name COLLATE \"C\"", (fingerprint,))]
        return len(new), stale

    def import_people(self, records, merge: bool = False, progress=None, chunk: int = 2000) -> int:
        """Add `PersonRecord`s in one transaction with COPY (`gallery copy`, `bench gallery`); a non-empty
        gallery needs ``merge`` and then takes only new names."""
        n = 0
        sessions: dict[int, int] = {}
        with self._write() as db:
            if not merge and db.execute("SELECT EXISTS (SELECT 1 FROM cagereid.people)").fetchone()[0]:
                raise GalleryError(f"{self.origin}: not empty (add --merge to add the people to it)")
            dims = dict(db.execute("SELECT fingerprint, dim FROM cagereid.models").fetchall())
            first_id = None
            buf: list[PersonRecord] = []

            def flush():
                nonlocal first_id
                if not buf:
                    return
                ids = [r[0] for r in db.execute("SELECT nextval('cagereid.people_id_seq') FROM generate_series(1, %s)",
                                                (len(buf),))]
                first_id = ids[0] if first_id is None else first_id
                fresh = sorted({int(r["session"]) for rec in buf for r in rec.rows} - set(sessions))
                if fresh:
                    got = [r[0] for r in db.execute("SELECT nextval('cagereid.sessions') FROM generate_series(1, %s)",
                                                    (len(fresh),))]
                    sessions.update(zip(fresh, got))
                taken = db.execute("SELECT name FROM cagereid.people WHERE name = ANY(%s) LIMIT 1",
                                   ([rec.name for rec in buf],)).fetchone()
                if taken:
                    raise GalleryError(f"{self.origin}: already holds {taken[0]!r} (nothing copied)")
                with db.cursor().copy("COPY cagereid.people(id, name, anonymous, created, updated) FROM STDIN") as cp:
                    for pid, rec in zip(ids, buf):
                        cp.write_row((pid, rec.name, rec.anonymous, rec.created, rec.updated))
                with db.cursor().copy("COPY cagereid.embeddings(person, fingerprint, dim, vec, source, session, "
                                      "created, wf, wj, win) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["int8", "text", "int4", "vector", "text", "int8", "float8", "int4", "int4",
                                  "bytea"])
                    for pid, rec in zip(ids, buf):
                        for r in rec.rows:
                            v, w = np.asarray(r["vector"], np.float32), r.get("window")
                            w = None if w is None else np.asarray(w, "<f4")
                            cp.write_row((pid, r["fingerprint"], len(v), Vec(v), r["source"],
                                          sessions[int(r["session"])], r["created"],
                                          None if w is None else w.shape[0], None if w is None else w.shape[1],
                                          None if w is None else w.tobytes()))
                buf.clear()

            names = set()
            for rec in records:
                rec.name = check_name(rec.name, self.origin)
                if rec.name in names:
                    raise GalleryError(f"{self.origin}: {rec.name!r} twice in the input")
                names.add(rec.name)
                for r in rec.rows:
                    d = dims.setdefault(r["fingerprint"], len(r["vector"]))
                    if d != len(r["vector"]) or not np.isfinite(r["vector"]).all():
                        raise GalleryError(f"{self.origin}: {rec.name!r}: an embedding of model {r['fingerprint']} "
                                           f"is not {d} finite values")
                buf.append(rec)
                n += 1
                if len(buf) >= chunk:
                    flush()
                if progress:
                    progress(n)
            flush()
            if first_id is not None:
                db.execute("INSERT INTO cagereid.models SELECT fingerprint, min(dim), count(*) FROM "
                           "cagereid.embeddings WHERE person >= %s GROUP BY fingerprint ON CONFLICT (fingerprint) DO "
                           "UPDATE SET n = models.n + excluded.n", (first_id,))
                db.execute(_CENTROIDS.format(where="person >= %s"), (first_id,))
                for (dim,) in db.execute("SELECT DISTINCT dim FROM cagereid.models").fetchall():
                    self._index(db, dim)
                db.execute("ANALYZE cagereid.centroids")  # fresh statistics: the planner picks the HNSW index
        return n

    # --- reads -------------------------------------------------------------------------------------------
    def people(self) -> list[PersonInfo]:
        with self._errors("read"):
            rows = self._conn().execute(
                "SELECT p.name, count(e.id), string_agg(DISTINCT e.fingerprint, ','), p.created, p.updated, "
                "p.anonymous, count(e.win) FROM cagereid.people p LEFT JOIN cagereid.embeddings e ON e.person = p.id "
                "GROUP BY p.id ORDER BY p.name COLLATE \"C\"").fetchall()
        return [PersonInfo(r[0], int(r[1]), sorted(r[2].split(",")) if r[2] else [], float(r[3]), float(r[4]),
                           bool(r[5]), int(r[6])) for r in rows]

    def count_people(self) -> int:
        with self._errors("read"):
            return int(self._conn().execute("SELECT count(*) FROM cagereid.people").fetchone()[0])

    def fingerprints(self) -> list[str]:
        with self._errors("read"):
            return list(self._models(self._conn()))

    def version(self) -> int:
        with self._errors("read"):
            return int(self._conn().execute("SELECT value FROM cagereid.meta WHERE key='changes'").fetchone()[0])

    @contextmanager
    def _snapshot(self):
        """A read-only REPEATABLE READ transaction: several queries see one state of the gallery."""
        with self._errors("read"):
            db = self._conn()
            with db.transaction():
                db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield db

    def _model_dim(self, db, fingerprint: str) -> int | None:
        models = self._models(db)
        if models and fingerprint not in models:
            raise other_model_error(self.origin, next(iter(models)), fingerprint, "the running model")
        return models.get(fingerprint)

    def load(self, fingerprint: str, sample: int | None = None) -> GalleryData:
        """All embeddings of model ``fingerprint`` (as `SQLiteGallery.load`); ``sample``: only those of that
        many people, a fixed pseudo-random choice (calibrating the acceptance score of a large gallery)."""
        pick = ("" if sample is None else
                f"AND e.person IN (SELECT id FROM cagereid.people ORDER BY md5(name) LIMIT {int(sample)}) ")
        with self._snapshot() as db:
            dim = self._model_dim(db, fingerprint)
            everyone = dict(db.execute("SELECT name, anonymous FROM cagereid.people").fetchall())
            rows = db.execute("SELECT p.name, vector_send(e.vec), e.session FROM cagereid.embeddings e JOIN "
                              f"cagereid.people p ON p.id = e.person WHERE e.fingerprint = %s {pick}ORDER BY p.name "
                              "COLLATE \"C\", e.id", (fingerprint,)).fetchall()
        if sample is not None:
            everyone = {r[0]: everyone[r[0]] for r in rows}
        names = sorted({r[0] for r in rows})
        index = {n: i for i, n in enumerate(names)}
        emb = _vectors([bytes(r[1]) for r in rows], dim or 0, self.origin)
        return GalleryData(names=names, embeddings=emb, person=np.array([index[r[0]] for r in rows], np.int64),
                           session=np.array([int(r[2]) for r in rows], np.int64),
                           anonymous=np.array([bool(everyone[n]) for n in names], bool),
                           stale=_stale(list(everyone), names))

    def load_centroids(self, fingerprint: str, metric: str = "euclidean") -> GalleryData:
        """One row per person: the centroid `search` uses (``reduce=centroid``: a `Matcher` over these rows
        scores exactly like one over all embeddings). Sessions are one per person (no calibration from it)."""
        col = "nmean" if metric == "cosine" else "mean"
        with self._snapshot() as db:
            dim = self._model_dim(db, fingerprint)
            rows = db.execute(f"SELECT p.name, vector_send(c.{col}), p.anonymous FROM cagereid.centroids c JOIN "
                              "cagereid.people p ON p.id = c.person WHERE c.fingerprint = %s ORDER BY p.name "
                              "COLLATE \"C\"", (fingerprint,)).fetchall()
        names = [r[0] for r in rows]
        return GalleryData(names=names, embeddings=_vectors([bytes(r[1]) for r in rows], dim or 0, self.origin),
                           person=np.arange(len(rows), dtype=np.int64), session=np.arange(len(rows), dtype=np.int64),
                           anonymous=np.array([bool(r[2]) for r in rows], bool))

    def search(self, queries: np.ndarray, k: int, fingerprint: str, metric: str = "euclidean",
               reduce: str = "centroid", ef_search: int = 40) -> SearchResult:
        """Nearest ``k`` people per query with the HNSW index (approximate; one round trip for the batch).
        ``reduce=nearest`` is searched exactly over a load."""
        if reduce != "centroid":
            return super().search(queries, k, fingerprint, metric, reduce)
        if metric not in ("euclidean", "cosine"):
            raise GalleryError(f"unknown metric {metric!r}")
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim != 2 or not np.isfinite(q).all():
            raise GalleryError(f"search needs finite (B, D) queries, got {q.shape}")
        k = int(k)
        col, op = ("nmean", "<=>") if metric == "cosine" else ("mean", "<->")
        with self._snapshot() as db:
            dim = self._model_dim(db, fingerprint)
            out_names: list[list[str]] = [[] for _ in q]
            scores = np.full((len(q), k), -np.inf)
            if dim is None or len(q) == 0 or k <= 0:
                return SearchResult(out_names, scores)
            if q.shape[1] != dim:
                raise GalleryError(f"search: queries are {q.shape[1]}-dimensional, the gallery {dim}")
            db.execute(f"SET LOCAL hnsw.ef_search = {max(int(ef_search), k)}")
            db.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            db.execute("SET LOCAL enable_seqscan = off")  # the index, also while the table statistics are stale
            d = int(dim)
            rows = db.execute(
                f"SELECT q.i, p.name, c.d FROM unnest(%b::vector[]) WITH ORDINALITY AS q(t, i) CROSS JOIN LATERAL "
                f"(SELECT person, {col}::vector({d}) {op} q.t::vector({d}) AS d FROM cagereid.centroids "
                f"WHERE dim = {d} AND fingerprint = %s ORDER BY {col}::vector({d}) {op} q.t::vector({d}) LIMIT {k}) c "
                "JOIN cagereid.people p ON p.id = c.person", ([Vec(v) for v in q], fingerprint)).fetchall()
        per: dict[int, list[tuple[float, str]]] = {}
        for i, name, dist in rows:
            per.setdefault(int(i) - 1, []).append((float(dist), name))
        for i, hits in per.items():
            hits.sort()  # relaxed_order: re-sort
            out_names[i] = [n for _, n in hits[:k]]
            s = [(1.0 - dd) if metric == "cosine" else -dd for dd, _ in hits[:k]]
            scores[i, :len(s)] = s
        return SearchResult(out_names, scores)

    def export(self) -> Iterator[PersonRecord]:
        """Every person with all their rows (any model), streamed from one snapshot (`gallery copy`)."""
        with self._snapshot() as db:
            cur = db.cursor(name="cagereid_export")
            cur.itersize = 2000
            cur.execute("SELECT p.id, p.name, p.anonymous, p.created, p.updated, e.fingerprint, e.dim, "
                        "vector_send(e.vec), e.source, e.session, e.created, e.wf, e.wj, e.win FROM cagereid.people p "
                        "LEFT JOIN cagereid.embeddings e ON e.person = p.id ORDER BY p.name COLLATE \"C\", p.id, e.id")
            rec, last = None, None
            for (pid, name, anon, created, updated, fp, dim, vec, source, session, ecreated, wf, wj, win) in cur:
                if pid != last:
                    if rec is not None:
                        yield rec
                    rec, last = PersonRecord(name, bool(anon), float(created), float(updated), []), pid
                if fp is not None:
                    rec.rows.append({"fingerprint": fp, "vector": _vectors([bytes(vec)], dim, self.origin)[0],
                                     "source": source, "session": session, "created": ecreated,
                                     "window": window_from(self.origin, wf, wj, win)})
            if rec is not None:
                yield rec
            cur.close()
