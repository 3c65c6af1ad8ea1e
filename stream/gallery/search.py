"""Live matching against a large shared gallery: nearest-person search in the database, with a cache in memory.

Up to `DB_SEARCH_MIN_PEOPLE` people the live identifier loads every embedding and matches in memory
(`cages.matcher.Matcher`, exact). From that size on, with a PostgreSQL gallery and ``reduce=centroid`` (the
default), `SearchMatching` matches each batch with `PostgresGallery.search` (pgvector HNSW: milliseconds for
100,000 people, where the exact matrix product grows with the gallery) and keeps only the people's centroids in
memory (float32): when the database cannot be reached, decisions go on from them (exact) until it is back.
Enrolments (visitor ids come often) do not reload a large gallery: the database search sees them at once (a
name not seen before is added), and the cache and acceptance score are rebuilt at most every `CACHE_REFRESH_S`. The acceptance score comes from the config (``accept_score``) or is calibrated on `CALIBRATION_PEOPLE`
people (a fixed sample): calibration compares every enrolment walk with every other person, which does not
scale to the whole gallery. `cagereid bench gallery` measures the two ways.
"""
from __future__ import annotations

import time

import numpy as np

from stream.errors import GalleryError

DB_SEARCH_MIN_PEOPLE = 20000
CALIBRATION_PEOPLE = 200
CACHE_REFRESH_S = 300.0  # a large gallery's cache (and acceptance score) is rebuilt at most this often
RETRY_S = 5.0  # after a failed database search, the cache answers for this long before the database is tried again


class SearchMatcher:
    """What `stream.identify.Identifier` calls ``matcher``: ``match(queries (B, D)) -> MatchResult`` with
    ``best`` indices into ``names`` (a list it may extend: people enrolled since the last reload) and their
    scores (`cages.matcher.Matcher` scores). ``scores`` is empty ``(B, 0)`` (no full score matrix at this size)."""

    def __init__(self, spec, fingerprint: str, metric: str, names: list[str], centroids: np.ndarray,
                 healthy=lambda: True) -> None:
        self.spec, self.fingerprint, self.metric = spec, fingerprint, metric
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}
        c = np.asarray(centroids, np.float32)
        if metric == "cosine":
            c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
        self._c, self._c2 = c, (c * c).sum(1)
        self.healthy = healthy  # False while the gallery watcher cannot reach the database
        self._db = None
        self._retry_at = 0.0
        self.error: str | None = None
        self.db_batches = self.cache_batches = 0

    def _exact(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(self._c) == 0:
            return np.full(len(q), -1, np.int64), np.full(len(q), -np.inf)
        if self.metric == "cosine":
            qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            s = qn @ self._c.T
        else:
            s = -np.sqrt(np.maximum((q * q).sum(1)[:, None] - 2 * q @ self._c.T + self._c2[None], 0))
        best = s.argmax(1)
        return best.astype(np.int64), s[np.arange(len(q)), best].astype(np.float64)

    def _search(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from stream.gallery import open_gallery

        if self._db is None:
            self._db = open_gallery(self.spec, create=False, readonly=True, connect_timeout_s=1.0)
        res = self._db.search(q, 1, self.fingerprint, metric=self.metric)
        best = np.full(len(q), -1, np.int64)
        for i, hit in enumerate(res.names):
            if hit:
                j = self.index.get(hit[0])
                if j is None:  # enrolled after the last reload: known by name from now on
                    j = self.index[hit[0]] = len(self.names)
                    self.names.append(hit[0])
                best[i] = j
        return best, res.scores[:, 0].astype(np.float64)

    def match(self, queries: np.ndarray):
        from cages.matcher import MatchResult

        q = np.asarray(queries, np.float32)
        now = time.monotonic()
        best = None
        if now >= self._retry_at and self.healthy():
            try:
                best, score = self._search(q)
                self.error = None
                self.db_batches += 1
            except GalleryError as exc:
                self.error = str(exc)
                self._retry_at = now + RETRY_S
                if self._db is not None:
                    self._db.close()
                    self._db = None
        if best is None:
            best, score = self._exact(q)
            self.cache_batches += 1
        if (best < 0).any():  # an empty gallery: nobody to name
            score = np.where(best < 0, -np.inf, score)
            best = np.where(best < 0, 0, best) if self.names else best
        return MatchResult(np.zeros((len(q), 0)), best, score, np.full(len(q), -np.inf))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class SearchMatching:
    """What `stream.identify.Matching` gives the identifier (``names``, ``matcher``, ``accept_score``), for a
    large PostgreSQL gallery: built from the centroids and a calibration sample, matching in the database."""

    def __init__(self, gallery, spec, fingerprint: str, cfg, calibrate, healthy=lambda: True) -> None:
        cent = gallery.load_centroids(fingerprint, cfg.metric)
        self.names = list(cent.names)
        self.matcher = SearchMatcher(spec, fingerprint, cfg.metric, self.names, cent.embeddings, healthy)
        if cfg.accept_score is not None:
            self.accept_score = cfg.accept_score
        else:
            self.accept_score = calibrate(gallery.load(fingerprint, sample=CALIBRATION_PEOPLE), cfg)
        self.stale: list[str] = []
        self.built = time.monotonic()


def use_db_search(gallery, cfg, min_people: int = DB_SEARCH_MIN_PEOPLE) -> bool:
    """True when live matching should search in the database: a gallery that can (PostgreSQL), the centroid rule
    with the Euclidean metric (what the index serves), and at least ``min_people`` people."""
    return bool(getattr(gallery, "supports_db_search", False) and cfg.reduce == "centroid"
                and cfg.metric == "euclidean" and gallery.count_people() >= min_people)
