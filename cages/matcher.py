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
                        impostor_q: float = 95.0, floor_q: float = 50.0) -> float | None:
    """An open-set acceptance score from the gallery alone (``None`` with fewer than two people).

    Genuine scores: each embedding against its own person, leaving out the embeddings of its own ``group``
    (enrolment session/recording) when that person has other groups, so the score reflects a new walk.
    Impostor scores: each embedding against the best *other* person (a stranger's best match looks like that).
    The threshold is the midpoint between the genuine ``genuine_q`` and the impostor ``impostor_q`` percentiles;
    the defaults (25, 95) lean towards "unknown" when the two overlap: a wrong name is worse than no name. Where
    they overlap so much that the midpoint would accept most impostors, it is raised to the impostors' ``floor_q``
    percentile (default: the median, so never more than half of the gallery's impostor scores pass).
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
    # Where the two overlap (the genuine percentile below the impostor one) the midpoint could accept most
    # impostors: never below the impostors' ``floor_q`` percentile (at most half of them accepted by default).
    return float(max((np.percentile(g, genuine_q) + np.percentile(i, impostor_q)) / 2, np.percentile(i, floor_q)))


# --- walk-level matching (improved retrieval, docs/evaluation.md "Walk-level retrieval") ------------------------
def walk_means(embeddings: np.ndarray, walk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(uniq_walks (W,), means (W, D))``: the mean embedding of each walk id in ``walk`` ``(N,)``."""
    x = np.asarray(embeddings, dtype=np.float64)
    uniq, inv = np.unique(np.asarray(walk), return_inverse=True)
    sums = np.zeros((len(uniq), x.shape[1]))
    np.add.at(sums, inv.reshape(-1), x)
    return uniq, sums / np.bincount(inv.reshape(-1), minlength=len(uniq))[:, None]


def smooth_gallery(embeddings: np.ndarray, walk: np.ndarray, alpha: float) -> np.ndarray:
    """Gallery windows pulled towards the mean of their enrolment walk: ``alpha * x + (1 - alpha) * walk_mean``.

    ``alpha = 1`` leaves the gallery as it is, ``alpha = 0`` replaces every window by its walk's centroid. Uses
    only the gallery and its walk grouping (known at enrolment), never a query, so it is not transductive.
    A query window's nearest gallery windows then depend on the whole enrolled walk as well as on the single
    window: on UCalgary this raised window mAP by 3-5 points and kept Rank-1 (docs/evaluation.md)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    x = np.asarray(embeddings, dtype=np.float64)
    if alpha == 1.0 or len(x) == 0:
        return x.copy()
    uniq, means = walk_means(x, walk)
    return alpha * x + (1.0 - alpha) * means[np.searchsorted(uniq, np.asarray(walk))]


def nearest_distance_pool(window_dist: np.ndarray, query_walk: np.ndarray, ref_group: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walk-to-walk (or walk-to-person) distance from window distances: for every query window its distance to
    the *nearest* window of a reference group, averaged over the query walk's windows.

    ``window_dist`` ``(Q, R)`` between query windows and reference windows; ``query_walk`` ``(Q,)`` and
    ``ref_group`` ``(R,)`` ids. Returns ``(query_walks (A,), ref_groups (B,), dist (A, B))``. Unlike the distance of
    the walks' mean embeddings this lets every query window find the phase of the gait cycle it matches in the
    reference walk. Live twin: per-window scores of ``Matcher(..., reduce="nearest")`` averaged over the track's
    last windows (`pool_scores`)."""
    d = np.asarray(window_dist, dtype=np.float64)
    qw, qinv = np.unique(np.asarray(query_walk), return_inverse=True)
    rg, rinv = np.unique(np.asarray(ref_group), return_inverse=True)
    nearest = np.full((len(d), len(rg)), np.inf)
    np.minimum.at(nearest.T, rinv.reshape(-1), d.T)  # (Q, B): per query window, nearest window of each group
    sums = np.zeros((len(qw), len(rg)))
    np.add.at(sums, qinv.reshape(-1), nearest)
    return qw, rg, sums / np.bincount(qinv.reshape(-1), minlength=len(qw))[:, None]


def pool_scores(window_scores: np.ndarray, k: int) -> np.ndarray:
    """Running mean over the last ``k`` windows of per-window person scores ``(N, P)`` (e.g. of
    ``Matcher(..., reduce="nearest").scores``): the live form of `nearest_distance_pool` (-inf stays -inf)."""
    s = np.asarray(window_scores, dtype=np.float64)
    finite = np.isfinite(s)
    out = running_mean(np.where(finite, s, 0.0), k)
    absent = running_mean((~finite).astype(np.float64), k) > 0
    return np.where(absent, -np.inf, out)


def k_reciprocal_distance(query: np.ndarray, gallery: np.ndarray, k1: int = 20, k2: int = 6,
                          lambda_value: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al., CVPR 2017) of Euclidean distances ``(Q, G)``.

    Neighbourhoods are computed over the queries *and* the gallery together, so with several queries at once this
    is **transductive** (every query's result depends on the other queries); report it in its own row. With a
    single query it uses only that query and the gallery. Returns ``(1 - lambda) * Jaccard + lambda * original``
    (squared distances normalised per column, as in the paper's code)."""
    q = np.asarray(query, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    allf = np.vstack([q, g])
    nq, n = len(q), len(allf)
    sq = (allf * allf).sum(1)
    d = np.maximum(sq[:, None] + sq[None, :] - 2.0 * allf @ allf.T, 0.0)
    d = d / np.maximum(d.max(axis=0, keepdims=True), 1e-12)
    rank = np.argsort(d, axis=1, kind="stable")
    k1 = min(k1, n - 1)
    half = max(1, round(k1 / 2))
    v = np.zeros((n, n))
    for i in range(n):
        fwd = rank[i, :k1 + 1]
        recip = fwd[(rank[fwd, :k1 + 1] == i).any(axis=1)]
        expanded = [recip]
        for c in recip:
            cf = rank[c, :half + 1]
            cr = cf[(rank[cf, :half + 1] == c).any(axis=1)]
            if len(np.intersect1d(cr, recip)) > 2.0 / 3.0 * len(cr):
                expanded.append(cr)
        exp = np.unique(np.concatenate(expanded))
        w = np.exp(-d[i, exp])
        v[i, exp] = w / w.sum()
    if k2 > 1:
        v = v[rank[:, :k2]].mean(axis=1)
    jac = np.empty((nq, n))
    for i in range(nq):
        inter = np.minimum(v[i][None, :], v).sum(axis=1)
        jac[i] = 1.0 - inter / (2.0 - inter)
    return (1.0 - lambda_value) * jac[:, nq:] + lambda_value * d[:nq, nq:]
