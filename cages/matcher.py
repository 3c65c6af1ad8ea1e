"""Gallery matching: which enrolled person is a query embedding closest to, and how close.

A gallery is ``M`` embeddings ``(M, D)`` with a person index ``(M,)`` into ``P`` people. A query batch
``(B, D)`` gets one score per person ``(B, P)`` (higher = more similar):

* ``metric="cosine"``: cosine similarity in [-1, 1]; ``metric="euclidean"``: minus the Euclidean distance.
* ``reduce="centroid"``: compare with each person's mean embedding (cosine: the mean of the L2-normalised
  embeddings); ``reduce="nearest"``: the person's best single embedding (1-NN).

>>> m = Matcher(np.eye(3)[[0, 0, 1]], np.array([0, 0, 1]))
>>> r = m.match(np.array([[1.0, 0.1, 0.0]]))
>>> int(r.best[0]), round(float(r.best_score[0]), 3)
(0, 0.995)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MatchResult:
    scores: np.ndarray  # (B, P) score per person
    best: np.ndarray  # (B,) index of the best person, -1 when the gallery is empty
    best_score: np.ndarray  # (B,) its score (-inf when empty)
    second_score: np.ndarray  # (B,) the runner-up's score (-inf with fewer than two people)


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class Matcher:
    def __init__(self, embeddings: np.ndarray, person: np.ndarray, metric: str = "cosine",
                 reduce: str = "centroid") -> None:
        embeddings = np.asarray(embeddings, dtype=np.float64)
        person = np.asarray(person, dtype=np.int64)
        if embeddings.ndim != 2 or person.shape != (len(embeddings),):
            raise ValueError(f"need embeddings (M, D) and person (M,), got {embeddings.shape} and {person.shape}")
        if metric not in ("cosine", "euclidean") or reduce not in ("centroid", "nearest"):
            raise ValueError(f"unknown metric/reduce {metric!r}/{reduce!r}")
        if len(person) and person.min() < 0:
            raise ValueError("person indices must be >= 0")
        self.metric, self.reduce = metric, reduce
        self.n_people = int(person.max()) + 1 if len(person) else 0
        self.dim = embeddings.shape[1]
        if metric == "cosine":
            embeddings = _normalise(embeddings)
        if reduce == "centroid" and self.n_people:
            sums = np.zeros((self.n_people, self.dim))
            np.add.at(sums, person, embeddings)
            counts = np.bincount(person, minlength=self.n_people)[:, None]
            centroids = sums / np.maximum(counts, 1)
            self._ref, self._ref_person = (_normalise(centroids) if metric == "cosine" else centroids,
                                           np.arange(self.n_people))
            self._present = counts[:, 0] > 0
        else:
            self._ref, self._ref_person = embeddings, person
            self._present = np.bincount(person, minlength=self.n_people) > 0

    def _pair_scores(self, q: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            return _normalise(q) @ self._ref.T  # (B, R)
        d2 = (q * q).sum(1)[:, None] - 2 * q @ self._ref.T + (self._ref * self._ref).sum(1)[None, :]
        return -np.sqrt(np.maximum(d2, 0.0))

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """``(B, D)`` -> ``(B, P)`` score of every query against every person (-inf for absent people)."""
        q = np.asarray(queries, dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must be (B, {self.dim}), got {q.shape}")
        out = np.full((len(q), self.n_people), -np.inf)
        if self.n_people == 0 or len(q) == 0:
            return out
        pair = self._pair_scores(q)
        if self.reduce == "centroid":
            out[:, self._present] = pair[:, self._present]
            return out
        np.maximum.at(out.T, self._ref_person, pair.T)  # per person: best single embedding
        return out

    def match(self, queries: np.ndarray) -> MatchResult:
        s = self.scores(queries)
        B = len(s)
        if self.n_people == 0:
            empty = np.full(B, -np.inf)
            return MatchResult(s, np.full(B, -1, dtype=np.int64), empty, empty.copy())
        order = np.argsort(-s, axis=1, kind="stable")
        best = order[:, 0]
        best_score = s[np.arange(B), best]
        second = s[np.arange(B), order[:, 1]] if self.n_people > 1 else np.full(B, -np.inf)
        return MatchResult(s, best.astype(np.int64), best_score, second)


def running_mean(embeddings: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last ``k`` rows at every row of ``(N, D)`` (fewer at the start): a track's pooled embedding."""
    x = np.asarray(embeddings, dtype=np.float64)
    c = np.cumsum(np.vstack([np.zeros((1, x.shape[1])), x]), axis=0)
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(0, idx - k)
    return (c[idx] - c[lo]) / (idx - lo)[:, None]


class RunningMean:
    """Streaming twin of `running_mean` for one track: ``push(row)`` returns the mean of the last ``k`` rows.

    O(D) per row (a ring buffer and a running sum, re-summed once per lap so rounding cannot drift).
    """

    def __init__(self, k: int, dim: int) -> None:
        self.k = max(1, int(k))
        self.buf = np.zeros((self.k, dim))
        self.sum = np.zeros(dim)
        self.n = self.i = 0

    def push(self, row: np.ndarray) -> np.ndarray:
        if self.n == self.k:
            self.sum -= self.buf[self.i]
        self.buf[self.i] = row
        self.sum += self.buf[self.i]
        self.i = (self.i + 1) % self.k
        self.n = min(self.n + 1, self.k)
        if self.i == 0 or not np.isfinite(self.sum).all():  # a NaN row must leave with its row, not linger
            self.sum = self.buf.sum(axis=0)
        return self.sum / self.n


def split_single_groups(person: np.ndarray, group: np.ndarray, min_rows: int = 4) -> np.ndarray:
    """Groups for `calibrate_threshold` where a person enrolled from one walk only is cut into two walks.

    With one group (one enrolment walk) a person's genuine score would compare the walk with itself, which is
    far closer than any new walk: the calibrated threshold then rejects the right person on their next walk. So
    the later half of such a person's rows (in enrolment order, at least ``min_rows`` in all) gets a group of
    its own, and each half is scored against the other: still the same walk, but no row against itself.
    """
    person = np.asarray(person, dtype=np.int64)
    out = np.asarray(group, dtype=np.int64).copy()
    fresh = int(out.max()) + 1 if len(out) else 0
    for p in np.unique(person):
        rows = np.flatnonzero(person == p)
        if len(np.unique(out[rows])) == 1 and len(rows) >= min_rows:
            out[rows[len(rows) // 2:]] = fresh
            fresh += 1
    return out


def calibrate_threshold(embeddings: np.ndarray, person: np.ndarray, group: np.ndarray | None = None,
                        metric: str = "cosine", reduce: str = "centroid", genuine_q: float = 25.0,
                        impostor_q: float = 95.0) -> float | None:
    """An open-set acceptance score from the gallery alone (``None`` with fewer than two people).

    Genuine scores: each embedding against its own person, leaving out the embeddings of its own ``group``
    (enrolment session/recording) when that person has other groups, so the score reflects a new walk.
    Impostor scores: each embedding against the best *other* person (a stranger's best match looks like that).
    The threshold is the midpoint between the genuine ``genuine_q`` and the impostor ``impostor_q`` percentiles,
    but never below the impostor percentile (when the two overlap, at most ``100 - impostor_q`` % of the gallery's
    impostor scores pass): the defaults (25, 95) lean towards "unknown": a wrong name is worse than no name.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    person = np.asarray(person, dtype=np.int64)
    group = np.zeros(len(person), np.int64) if group is None else np.asarray(group, dtype=np.int64)
    people = np.unique(person)
    if len(people) < 2:
        return None
    genuine, impostor = [], []
    for p in people:
        own = person == p
        groups = np.unique(group[own])
        for g in groups:
            q = own & (group == g)
            ref = own & (group != g) if len(groups) > 1 else own
            m_g = Matcher(embeddings[ref], np.zeros(int(ref.sum()), np.int64), metric, reduce)
            genuine.append(m_g.scores(embeddings[q])[:, 0])
        others = ~own
        idx = np.unique(person[others], return_inverse=True)[1]
        m_i = Matcher(embeddings[others], idx, metric, reduce)
        impostor.append(m_i.scores(embeddings[own]).max(1))
    g, i = np.concatenate(genuine), np.concatenate(impostor)
    # Where the two overlap (the genuine percentile below the impostor one) the midpoint would accept most
    # impostors: never go below the impostor percentile (at most ``100 - impostor_q`` % of them accepted).
    return float(max((np.percentile(g, genuine_q) + np.percentile(i, impostor_q)) / 2, np.percentile(i, impostor_q)))
