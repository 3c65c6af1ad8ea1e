"""Re-identification metrics: distances, CMC / Rank-k, mAP, nAUC (two definitions), confusion matrix.

Two protocols use them (docs/evaluation.md):

* P2, retrieval: a distance matrix ``(P, G)`` between probe and gallery embeddings -> `rank_metrics`.
* P1, classifier (the CAGE paper): a score matrix ``(P, C)`` of a recognition network -> `score_metrics`.

Rules, the same in both:

* **Which probes count.** A probe whose identity has no (non-excluded) item in the gallery / no class can
  never be matched. It is left out of CMC, mAP and nAUC and counted in ``n_unmatched``; ``n_probes`` is the
  number that count. This mirrors torchreid's ``eval_market1501`` rule but is stated, not hidden.
* **Ties.** Sorting is stable: among equal distances (scores) the item that comes first in gallery (class)
  order ranks first. Exact ties are rare on real features; they make a result depend on gallery order,
  which is why duplicate recordings (UCalgary sub10 = sub4) must be dropped, not left to tie.
* **AP** of one probe = mean over its relevant gallery items of the precision at that item's rank.

>>> d = np.array([[0.1, 0.9], [0.8, 0.2]])
>>> rank_metrics(d, np.array([1, 2]), np.array([1, 2]), max_rank=2)["rank1"]
1.0
"""
from __future__ import annotations

import numpy as np


def pairwise_distance(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Distances ``(P, G)`` between rows of ``a`` ``(P, D)`` and ``b`` ``(G, D)``; ``metric`` is
    ``'euclidean'`` or ``'cosine'`` (1 - cosine similarity)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need (P, D) and (G, D) arrays, got {a.shape} and {b.shape}")
    if metric == "euclidean":
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.sqrt(np.maximum(d2, 0.0))
    if metric == "cosine":
        an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return 1.0 - an @ bn.T
    raise ValueError(f"unknown metric {metric!r} (use 'euclidean' or 'cosine')")


def rank_metrics(distmat: np.ndarray, probe_pids: np.ndarray, gallery_pids: np.ndarray,
                 max_rank: int = 10, exclude: np.ndarray | None = None) -> dict:
    """Retrieval metrics from a ``(P, G)`` distance matrix.

    ``exclude`` ``(P, G)`` bool marks gallery items that do not take part for that probe (e.g. the probe
    itself when probe and gallery are the same set, CASIA-B same-condition matching).
    Returns ``cmc`` (list of ``max_rank`` floats, CMC(k) for k = 1..max_rank), ``rank1/5/10``, ``mAP``,
    ``ap`` (per counted probe), ``matched`` (``(P,)`` bool, which probes counted), ``n_probes``,
    ``n_unmatched``.
    """
    distmat = np.asarray(distmat, dtype=np.float64)
    probe_pids = np.asarray(probe_pids)
    gallery_pids = np.asarray(gallery_pids)
    P, G = distmat.shape
    if probe_pids.shape != (P,) or gallery_pids.shape != (G,):
        raise ValueError(f"distmat {distmat.shape} does not match {probe_pids.shape} probes, {gallery_pids.shape} gallery")
    order = np.argsort(distmat, axis=1, kind="stable")  # (P, G) gallery indices, nearest first
    rel = gallery_pids[order] == probe_pids[:, None]  # (P, G) relevant, in ranked order
    keep = np.ones((P, G), dtype=bool) if exclude is None else ~np.take_along_axis(np.asarray(exclude, bool), order, 1)
    matched = (rel & keep).any(axis=1)
    cmc_hits = np.zeros(max_rank)
    aps = []
    for i in np.flatnonzero(matched):
        r = rel[i][keep[i]]  # ranked relevance, excluded items removed
        first = int(np.argmax(r))
        if first < max_rank:
            cmc_hits[first:] += 1
        hits = np.cumsum(r)
        aps.append(float((hits[r] / (np.flatnonzero(r) + 1)).mean()))
    n = int(matched.sum())
    cmc = cmc_hits / max(n, 1)
    out = {"cmc": cmc.tolist(), "mAP": float(np.mean(aps)) if aps else float("nan"),
           "ap": aps, "matched": matched, "n_probes": n, "n_unmatched": int(P - n)}
    for k in (1, 5, 10):
        out[f"rank{k}"] = float(cmc[min(k, max_rank) - 1]) if n else float("nan")
    return out


def score_metrics(scores: np.ndarray, labels: np.ndarray, classes: np.ndarray | None = None) -> dict:
    """Classifier (P1) metrics from a ``(P, C)`` score matrix (higher = more likely; raw logits are fine).

    ``labels`` ``(P,)`` are true person ids; ``classes`` ``(C,)`` the person id of each score column
    (default ``0..C-1``). Returns ``cmc`` (CMC(k), k = 1..C), ``rank1``, ``nAUC_roc`` (the original code's
    micro-averaged ROC-AUC of the flattened one-hot labels vs scores), ``nAUC_cmc`` (the paper's normalised
    area under the CMC curve, ``mean_k CMC(k)``), ``confusion`` ``(C, C)`` counts (row = true class,
    column = argmax), ``n_probes``, ``n_unmatched``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    P, C = scores.shape
    classes = np.arange(C) if classes is None else np.asarray(classes)
    col = {int(c): j for j, c in enumerate(classes.tolist())}
    y = np.array([col.get(int(p), -1) for p in np.asarray(labels).tolist()], dtype=np.int64)
    ok = y >= 0
    s, y = scores[ok], y[ok]
    order = np.argsort(-s, axis=1, kind="stable")  # (n, C) classes, best first
    pos = np.argmax(order == y[:, None], axis=1)  # rank (0-based) of the true class
    n = len(y)
    cmc = np.array([(pos < k).mean() if n else np.nan for k in range(1, C + 1)])
    onehot = np.zeros_like(s, dtype=bool)
    onehot[np.arange(n), y] = True
    confusion = np.zeros((C, C), dtype=np.int64)
    np.add.at(confusion, (y, order[:, 0]), 1)
    return {"cmc": cmc.tolist(), "rank1": float(cmc[0]) if n else float("nan"),
            "rank5": float(cmc[min(5, C) - 1]) if n else float("nan"),
            "nAUC_roc": roc_auc(onehot.ravel(), s.ravel()), "nAUC_cmc": float(cmc.mean()) if n else float("nan"),
            "confusion": confusion, "classes": classes.tolist(), "n_probes": n, "n_unmatched": int(P - n)}


def roc_auc(target: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of a binary problem (trapezoidal, ties count one half), via ranks."""
    target = np.asarray(target, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos = int(target.sum())
    n_neg = target.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="stable")
    sorted_s = score[order]
    ranks = np.empty(score.size)
    # average rank for each run of equal scores (1-based)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], score.size]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[target].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
