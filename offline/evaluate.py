"""Evaluation harness: CAGEs and the baselines on the same gallery/probe pairs, both protocols.

* **P2 (retrieval)**: every method embeds gallery and probe windows (``(N, D)``); probes are ranked against
  the gallery by Euclidean and cosine distance -> Rank-1/5/10, mAP, CMC (`offline.metrics.rank_metrics`).
* **P1 (classifier, the CAGE paper)**: a ``(P, C)`` score per probe. CAGEs: the recognition network's
  scores (mean of the f frame logits). Baselines: the kNN class score ``-min distance`` to the gallery
  windows of each person. -> Rank-k, nAUC_roc, nAUC_cmc, confusion (`offline.metrics.score_metrics`).

Both are reported at two **levels**: ``window`` (every probe window is a query, the papers' numbers) and
``sequence`` (the windows of one walk are aggregated: mean embedding for P2, on both sides; mean score for
P1). A walk is one ``(pid, recording)`` of a `WindowSet`; where the recording is unknown (-1) all windows of
a person in a split form one sequence.

Everything returns flat result rows (plain dicts, JSON-ready) that `offline.report` tabulates and plots:
``{method, protocol, split, level, distance, seed, rank1, rank5, rank10, mAP, nAUC_roc, nAUC_cmc, cmc,
n_probes, n_unmatched[, confusion, classes]}``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path

import numpy as np

from cagereid import configs
from cagereid.progress import Steps
from offline.datasets.base import WindowSet
from offline.errors import OfflineError
from offline.metrics import pairwise_distance, rank_metrics, score_metrics

DISTANCES = ("euclidean", "cosine")
#: Training config of the UCalgary harness when --config is not given (CPU-sized CAGE, see the file).
DEFAULT_UCALGARY_CONFIG = configs.path("eval_ucalgary")
P2_MAX_RANK = 20


@dataclass(frozen=True)
class Retrieval:
    """How P2 turns embeddings into rankings (the embeddings themselves are the method's).

    * ``gallery_smooth``: gallery windows become ``a * x + (1 - a) * mean of their walk``
      (`cages.matcher.smooth_gallery`; gallery-only, 1 = off). Probe windows stay single windows.
    * ``walk_pool``: sequence level. ``mean``: distance of the walks' mean embeddings (the original harness);
      ``nearest``: every probe window's distance to the nearest window of the gallery walk (not smoothed),
      averaged over the probe walk (`cages.matcher.nearest_distance_pool`; live: per-window ``nearest`` scores,
      averaged over the track's last windows with `cages.matcher.pool_scores`). With ``rerank`` the re-ranked
      window distances are pooled.
    * ``rerank``: k-reciprocal re-ranking of the window distances over all probes and the gallery
      (`cages.matcher.k_reciprocal_distance`): **transductive**, reported in rows of its own.
    """

    walk_pool: str = "mean"
    gallery_smooth: float = 1.0
    rerank: bool = False

    def __post_init__(self) -> None:
        if self.walk_pool not in WALK_POOLS:
            raise OfflineError(f"walk pooling must be one of {', '.join(WALK_POOLS)} (got {self.walk_pool!r})")
        if not 0.0 <= self.gallery_smooth <= 1.0:
            raise OfflineError(f"gallery smoothing must be in [0, 1] (got {self.gallery_smooth})")

    def describe(self) -> str:
        parts = [f"walk pooling {self.walk_pool}", f"gallery smoothing {self.gallery_smooth:g}"]
        return ", ".join(parts + (["k-reciprocal re-ranking (transductive)"] if self.rerank else []))


WALK_POOLS = ("mean", "nearest")
#: The original harness: plain nearest-neighbour windows, mean embedding per walk (the papers' window protocol).
PLAIN = Retrieval()
#: The UCalgary default, chosen by cross-validation over development subjects (docs/evaluation.md).
UCALGARY_RETRIEVAL = Retrieval(walk_pool="nearest", gallery_smooth=0.5)


@dataclass(frozen=True)
class SynthPretrain:
    """Label-free pretraining of the UCalgary encoders on synthetic walkers (`offline.synth.walker_windows`):
    ``identities`` x ``walks`` walks of ``frames`` frames, windows every ``stride`` frames, data seed ``seed``.
    One encoder is pretrained (training seed 0) and every per-seed / per-fold encoder is fine-tuned from it.
    Chosen by cross-validation over development subjects (docs/evaluation.md); improved mode only."""

    identities: int = 180  # 60 x 3 walks at stride 2 (8,820 windows): +1.5 over no pretraining, this +2.1
    walks: int = 3
    frames: int = 120
    stride: int = 3
    seed: int = 123
    limp_walks: int = 2  # the last that many walks of each person limp (walker_windows); 0 before issue #17's third round
    positives: str = "person"  # person: windows of any walk of one synthetic person; walk: of one walk (before)

    def describe(self) -> str:
        extra = (f", last {self.limp_walks} walks limping" if self.limp_walks else "") + (
            ", positives across a person's walks" if self.positives == "person" else "")
        return (f"synthetic walkers: {self.identities} people x {self.walks} walks x {self.frames} frames, stride "
                f"{self.stride}, data seed {self.seed}{extra}")

    def windows(self, f: int, layout: str, dataset: str = "UCALGARY"):
        from offline.synth import walker_windows

        return walker_windows(f, layout, self.identities, self.walks, self.frames, self.stride, self.seed, dataset,
                              limp_walks=self.limp_walks, positives=self.positives)


#: The UCalgary default (`cagereid evaluate --dataset UCALGARY`; ``--pretrain none`` turns it off).
UCALGARY_PRETRAIN = SynthPretrain()
#: Weight of the pretrained encoder beside the fine-tuned ones (`run_ucalgary`'s ``init_weight``; chosen by
#: cross-validation over development subjects, docs/evaluation.md).
UCALGARY_INIT_WEIGHT = 2 / 3



@dataclass
class Method:
    """One evaluated method. ``embed(windows (N, f, J, 3)) -> (N, D)``; ``scores`` (optional) gives P1
    scores ``windows -> ((N, C), classes (C,))``; without it P1 uses kNN class scores on the embeddings."""

    name: str
    embed: Callable[[np.ndarray], np.ndarray]
    scores: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    seed: int | None = None  # None: deterministic (evaluated once)
    note: str = ""


# --- sequences --------------------------------------------------------------------------------------
def sequence_groups(ws: WindowSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(group (N,), group_pids (S,), group_recording (S,))``: index of each window's walk."""
    keys = np.stack([ws.pids, ws.recording], axis=1)  # (N, 2)
    uniq, group = np.unique(keys, axis=0, return_inverse=True)
    return group.reshape(-1), uniq[:, 0], uniq[:, 1]


def aggregate(x: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of the rows of ``x`` ``(N, ...)`` per group -> ``(n_groups, ...)``."""
    out = np.zeros((n_groups,) + x.shape[1:])
    np.add.at(out, group, x)
    return out / np.bincount(group, minlength=n_groups).reshape((-1,) + (1,) * (x.ndim - 1))


def same_recording_mask(probe: WindowSet, gallery: WindowSet, same_set: bool) -> np.ndarray:
    """``(P, G)`` bool: gallery windows of the probe's own walk (same pid and recording). With unknown
    recordings and probe set == gallery set, only the query itself (CAGE_SPEC Q19: skip rank 0)."""
    if (probe.recording < 0).any() or (gallery.recording < 0).any():
        if same_set:
            return np.eye(probe.n, gallery.n, dtype=bool)
        return np.zeros((probe.n, gallery.n), dtype=bool)
    return (probe.pids[:, None] == gallery.pids[None]) & (probe.recording[:, None] == gallery.recording[None])


# --- the two protocols ------------------------------------------------------------------------------
def knn_class_scores(probe_emb: np.ndarray, gallery_emb: np.ndarray, gallery_pids: np.ndarray,
                     distance: str = "euclidean", exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """P1 scores of a nearest-neighbour classifier: ``-min distance`` to each person's gallery windows."""
    d = pairwise_distance(probe_emb, gallery_emb, distance)
    if exclude is not None:
        d = np.where(exclude, np.inf, d)
    classes = np.unique(gallery_pids)
    scores = np.stack([-d[:, gallery_pids == c].min(axis=1) for c in classes], axis=1)  # (P, C)
    return np.where(np.isfinite(scores), scores, -1e12), classes


def open_set_scores(gallery_emb: np.ndarray, gallery: WindowSet, probe_emb: np.ndarray, probe: WindowSet,
                    metric: str = "euclidean", exclude_self: bool = False) -> dict:
    """The live open-set decision replayed offline: genuine vs impostor scores and the acceptance score.

    Each probe walk is pooled like a live track (running mean of the last ``pool_windows`` windows) and matched
    with `cages.matcher.Matcher` as the live stage does (the live defaults' ``reduce``, this ``metric``). Genuine:
    the score against the walker's own person; impostor: the best score among the *other* people (what a
    stranger's best match looks like). ``accept_score`` is calibrated on the gallery alone by
    `stream.identify.calibrate`, exactly the threshold `cagereid live` uses when the config leaves it unset.
    Scores are the matcher's (higher = more alike: minus the distance for euclidean, the cosine for cosine).
    ``exclude_self``: gallery and probes are the same windows; each walk is matched against the others only.
    """
    from types import SimpleNamespace

    from cages.matcher import Matcher, running_mean
    from stream.config import StreamConfig
    from stream.identify import calibrate

    cfg = StreamConfig(metric=metric)
    people = np.unique(gallery.pids)
    g_idx = np.searchsorted(people, gallery.pids)
    data = SimpleNamespace(names=[str(p) for p in people], embeddings=np.asarray(gallery_emb, np.float64),
                           person=g_idx, session=gallery.recording)
    accept = calibrate(data, cfg)
    group, _, _ = sequence_groups(probe)
    genuine, impostor = [], []
    matcher = None if exclude_self else Matcher(data.embeddings, g_idx, cfg.metric, cfg.reduce)
    for gi in np.unique(group):
        sel = np.flatnonzero(group == gi)
        pooled = running_mean(np.asarray(probe_emb, np.float64)[sel], cfg.pool_windows)
        m = matcher
        if exclude_self:
            keep = ~((gallery.pids == probe.pids[sel[0]]) & (gallery.recording == probe.recording[sel[0]]))
            m = Matcher(data.embeddings[keep], g_idx[keep], cfg.metric, cfg.reduce)
        s = np.full((len(sel), len(people)), -np.inf)  # -inf for people absent from the gallery
        part = m.scores(pooled)
        s[:, :part.shape[1]] = part
        own = np.searchsorted(people, probe.pids[sel[0]])
        known = own < len(people) and people[own] == probe.pids[sel[0]]
        if known and np.isfinite(s[:, own]).all():
            genuine.append(s[:, own])
            s = s.copy()
            s[:, own] = -np.inf
        best = s.max(axis=1)
        impostor.append(best[np.isfinite(best)])
    cat = lambda xs: np.concatenate(xs).tolist() if xs else []
    return {"genuine": cat(genuine), "impostor": cat(impostor), "accept_score": accept, "metric": cfg.metric,
            "reduce": cfg.reduce, "pool_windows": cfg.pool_windows}


def embedding_map(emb: np.ndarray, pids: np.ndarray, max_points: int = 3000, seed: int = 0) -> dict:
    """2-D PCA of embeddings (a random subset of at most ``max_points``) with their person ids, for a plot."""
    emb = np.asarray(emb, np.float64)
    idx = np.arange(len(emb))
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    x = emb[idx] - emb[idx].mean(axis=0)
    if len(x) < 2 or x.shape[1] < 2:
        return {"xy": [], "pids": [], "explained": []}
    _, sv, vt = np.linalg.svd(x, full_matrices=False)
    var = sv ** 2
    return {"xy": (x @ vt[:2].T).tolist(), "pids": np.asarray(pids)[idx].tolist(),
            "explained": (var[:2] / max(var.sum(), 1e-12)).tolist()}


def _row(method: Method, protocol: str, split: str, level: str, distance: str, m: dict) -> dict:
    row = {"method": method.name, "protocol": protocol, "split": split, "level": level, "distance": distance,
           "seed": method.seed}
    for k in ("rank1", "rank5", "rank10", "mAP", "nAUC_roc", "nAUC_cmc", "cmc", "n_probes", "n_unmatched"):
        if k in m:
            row[k] = m[k]
    if "confusion" in m:
        row["confusion"] = m["confusion"].tolist()
        row["classes"] = m["classes"]
    return row


def evaluate_pair(method: Method, gallery: WindowSet, probe: WindowSet, split: str,
                  protocols: tuple[str, ...] = ("p1", "p2"), distances: tuple[str, ...] = DISTANCES,
                  exclude_same_recording: bool = False, same_set: bool = False,
                  gallery_emb: np.ndarray | None = None, retrieval: Retrieval = PLAIN,
                  probe_emb: np.ndarray | None = None) -> list[dict]:
    """All rows of one method on one gallery/probe pair (both levels, every distance, P1 and/or P2).
    ``retrieval`` sets how P2 ranks (`Retrieval`); P1 does not depend on it."""
    from cages import matcher

    g_emb = method.embed(gallery.windows) if gallery_emb is None else gallery_emb  # (G, D)
    if same_set:
        p_emb = g_emb
    else:
        p_emb = method.embed(probe.windows) if probe_emb is None else probe_emb  # (P, D)
    exclude = same_recording_mask(probe, gallery, same_set) if (exclude_same_recording or same_set) else None
    pg, pg_pids, pg_rec = sequence_groups(probe)
    gg, gg_pids, gg_rec = sequence_groups(gallery)
    seq_exclude = None
    if exclude is not None:  # a probe walk never matches its own walk in the gallery
        seq_exclude = (pg_pids[:, None] == gg_pids[None]) & (pg_rec[:, None] == gg_rec[None])
        if (pg_rec < 0).any():
            seq_exclude = np.eye(len(pg_pids), len(gg_pids), dtype=bool) if same_set else None
    rows = []
    if "p2" in protocols:
        p_seq, g_seq = aggregate(p_emb, pg, len(pg_pids)), aggregate(g_emb, gg, len(gg_pids))
        g_win = matcher.smooth_gallery(g_emb, gg, retrieval.gallery_smooth)
        for distance in distances:
            if retrieval.rerank:  # Euclidean re-ranking; for cosine on unit vectors (same order as cosine)
                unit = (lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)) \
                    if distance == "cosine" else (lambda x: x)
                d_win = matcher.k_reciprocal_distance(unit(p_emb), unit(g_win))
            else:
                d_win = pairwise_distance(p_emb, g_win, distance)
            if exclude is not None:
                d_win = np.where(exclude, np.inf, d_win)
            m = rank_metrics(d_win, probe.pids, gallery.pids, min(P2_MAX_RANK, gallery.n), exclude)
            rows.append(_row(method, "P2", split, "window", distance, m))
            if distance == distances[0] and not retrieval.rerank:  # what `offline.report` plots (not in the JSON)
                rows[-1]["open_set"] = open_set_scores(g_emb, gallery, p_emb, probe, distance, exclude_self=same_set)
                rows[-1]["embedding_map"] = embedding_map(p_emb, probe.pids)
            if retrieval.walk_pool == "nearest":
                # the gallery windows as they are: smoothing them cost sequence Rank-1 on 2 folds of 4
                d_pw = d_win if retrieval.rerank else pairwise_distance(p_emb, g_emb, distance)
                if exclude is not None:
                    d_pw = np.where(exclude, np.inf, d_pw)
                _, _, d_seq = matcher.nearest_distance_pool(d_pw, pg, gg)
            elif retrieval.rerank:
                d_seq = matcher.k_reciprocal_distance(p_seq, g_seq, k1=3, k2=1)
            else:
                d_seq = pairwise_distance(p_seq, g_seq, distance)
            m = rank_metrics(d_seq, pg_pids, gg_pids, min(P2_MAX_RANK, len(gg_pids)), seq_exclude)
            rows.append(_row(method, "P2", split, "sequence", distance, m))
    if "p1" in protocols:
        if method.scores is not None:
            scores, classes = method.scores(probe.windows)
            distance = "RN"
        else:
            distance = distances[0]
            scores, classes = knn_class_scores(p_emb, g_emb, gallery.pids, distance, exclude)
        rows.append(_row(method, "P1", split, "window", distance, score_metrics(scores, probe.pids, classes)))
        seq_scores = aggregate(scores, pg, len(pg_pids))
        rows.append(_row(method, "P1", split, "sequence", distance, score_metrics(seq_scores, pg_pids, classes)))
    return rows


# --- methods ----------------------------------------------------------------------------------------
def baseline_methods(gallery: WindowSet, names: tuple[str, ...] | None = None) -> list[Method]:
    """The baselines fitted (z-score statistics only, no labels) on the gallery windows."""
    from offline.baselines import BASELINES, make_baseline

    out = []
    for name in BASELINES if names is None else names:
        model = make_baseline(name, gallery.layout, gallery.J).fit(gallery.windows)
        out.append(Method(name, model.embed, note="fitted on gallery statistics, no labels"))
    return out


def cage_method(run_dir, name: str = "CAGEs", seed: int | None = None, device: str = "cpu",
                readout: str | None = None, bone_weight: float | None = None) -> Method:
    """CAGEs from a run folder written by `cagereid train` (``encoder.pt|json``, optional ``rn.pt|json``).

    P2 uses the extractor's window embedding; P1 uses the recognition network when the folder has one.
    ``readout`` / ``bone_weight`` override the checkpoint's embedding settings (the RN keeps the checkpoint's)."""
    run_dir = Path(run_dir)
    if not (run_dir / "encoder.pt").is_file():
        raise OfflineError(f"{run_dir / 'encoder.pt'}: not found (expected a run folder written by `cagereid train`)")
    from cages.features import READOUTS, CageExtractor

    extractor = CageExtractor.from_checkpoint(run_dir, device=device)
    rn_extractor = extractor
    if readout is not None or bone_weight is not None:
        rn_extractor = CageExtractor.from_checkpoint(run_dir, device=device)  # the RN reads what it was trained on
    if readout is not None:
        if readout not in READOUTS:
            raise OfflineError(f"readout must be one of {', '.join(READOUTS)} (got {readout!r})")
        extractor.features.readout = readout
    if bone_weight is not None:
        if bone_weight < 0:
            raise OfflineError(f"--bone-weight must be >= 0 (got {bone_weight})")
        if bone_weight > 0 and not extractor.features.bones:
            raise OfflineError(f"{run_dir}: trained without the bone-length cue (no bone statistics stored), so "
                            "--bone-weight cannot add it")
        extractor.features.bone_weight = float(bone_weight)
    scores = None
    if (run_dir / "rn.pt").is_file():
        scores = _rn_scorer(run_dir, rn_extractor, device)
    fc = extractor.features
    return Method(name, lambda w: _np(extractor.embed(w)), scores, seed,
                  note=f"{run_dir} (readout {fc.readout}, bone weight {fc.bone_weight})")


def ensemble_method(members: list[Method], name: str, seed: int | None = None,
                    weights: list[float] | None = None) -> Method:
    """Several CAGE runs (other seeds) as one method: the members' embeddings concatenated, member ``i`` scaled by
    ``sqrt(weights[i])`` (default ``1/K`` each, weights summing to 1), so the squared Euclidean distance is the
    weighted mean of the members' squared distances (the bone-length cue, the same in every member, keeps its
    weight); P1 scores are the mean of the RN scores of the members that have an RN (their classes must agree).
    One member returns it unchanged (renamed)."""
    if not members:
        raise OfflineError("an ensemble needs at least one member")
    if len(members) == 1:
        return replace(members[0], name=name, seed=seed)
    k = len(members)
    wts = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=np.float64)
    if wts.shape != (k,) or (wts < 0).any() or not np.isclose(wts.sum(), 1.0):
        raise OfflineError(f"ensemble weights: need {k} non-negative weights summing to 1 (got {weights})")
    scale = np.sqrt(wts)

    def embed(w: np.ndarray) -> np.ndarray:
        return np.concatenate([s * m.embed(w) for s, m in zip(scale, members)], axis=1)

    scores = None
    scorers = [m for m in members if m.scores is not None]  # a pretrained member has no RN
    if scorers:
        def scores(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            parts = [m.scores(w) for m in scorers]
            classes = parts[0][1]
            if any(not np.array_equal(c, classes) for _, c in parts):
                raise OfflineError("ensemble members were trained on different classes")
            return np.mean([s for s, _ in parts], axis=0), classes

    note = f"ensemble of {k}" + ("" if weights is None else " (weights " + ", ".join(f"{x:.3g}" for x in wts) + ")")
    return Method(name, embed, scores, seed, note=note + ": " + "; ".join(m.note for m in members))


def _rn_scorer(run_dir, extractor, device: str):
    """``windows -> (scores (N, C), classes)`` of the run's recognition network (`offline.training.rn`)."""
    from offline.training.rn import extract_features, load_rn, rn_scores

    rn, classes = load_rn(run_dir, device)
    classes = np.asarray(classes)

    def scores(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feats = extract_features(extractor, windows)  # (N, f, D_rn): what the RN was trained on
        return _np(rn_scores(rn, feats, windows.shape[1])), classes

    return scores


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


# --- datasets ---------------------------------------------------------------------------------------
def detect_layout(root, dataset: str, f: int) -> str:
    """``'p2'`` when ``root/<DS>/<f>/train_npy_data`` exists, else ``'cage'`` (the paper's layout)."""
    for base in (Path(root), Path(root) / "Datasets"):
        if (base / dataset / str(f) / "train_npy_data").is_dir():
            return "p2"
    return "cage"


def views_of(root, dataset: str, f: int) -> list[int | None]:
    """CASIA_B CVE views present under ``root`` (sorted); ``[None]`` for every other dataset."""
    if dataset != "CASIA_B":
        return [None]
    for base in (Path(root), Path(root) / "Datasets"):
        folder = base / dataset / str(f)
        if folder.is_dir():
            views = sorted(int(p.name.split("_")[1]) for p in folder.glob("view_*") if p.name.split("_")[1].isdigit())
            if views:
                return views
    from offline.datasets.base import DatasetError

    raise DatasetError(f"{Path(root) / dataset / str(f)}: no view_<v> folders (CASIA_B CVE)")


def load_pairs(root, dataset: str, f: int, layout: str, view: int | None = None) -> list[tuple[object, dict]]:
    """``[(Protocol, {split: WindowSet})]`` of every gallery/probe pair of ``dataset`` in ``layout``."""
    from offline import protocols as P

    out = []
    protos = P.protocols(dataset, layout)
    if layout == "p2":
        from offline.datasets.p2_layout import read_p2_dataset

        splits = read_p2_dataset(root, dataset, f)
        return [(p, splits) for p in protos]
    from offline.datasets.cage_layout import read_cage_dataset

    if dataset == "CASIA_B":
        views = views_of(root, dataset, f) if view is None else [view]
        for v in views:
            splits = read_cage_dataset(root, dataset, f, view=v)
            out += [(p, splits) for p in protos if p.view == v]
        return out
    splits = read_cage_dataset(root, dataset, f, view=view)
    return [(p, splits) for p in protos if p.probe in splits and p.gallery in splits]


def evaluate_protocols(pairs: list[tuple[object, dict]], cage_methods: list[Method] | None = None,
                       protocols: tuple[str, ...] = ("p1", "p2"), baselines: tuple[str, ...] | None = None,
                       distances: tuple[str, ...] = DISTANCES, progress=None,
                       retrieval: Retrieval = PLAIN) -> list[dict]:
    """Rows of the baselines (fitted per gallery) and the given CAGE methods on every pair."""
    rows = []
    for proto, splits in pairs:
        gallery, probe = splits[proto.gallery], splits[proto.probe]
        same = proto.gallery == proto.probe
        methods = list(cage_methods or []) + baseline_methods(gallery, baselines)
        for m in methods:
            rows += evaluate_pair(m, gallery, probe, proto.name, protocols, distances,
                                  exclude_same_recording=proto.exclude_same_recording, same_set=same,
                                  retrieval=retrieval)
            if progress is not None:
                progress(f"{proto.name}: {m.name}")
    return rows


# --- UCalgary tracking switches -------------------------------------------------------------------------
#: A root (SpineBase) step longer than this between two frames (1/30 s) is not a walker's: the Kinect switched
#: to another body (median step 0.02 m, 99th percentile 0.06 m on the development subjects; switches 1-4 m).
TRACKING_JUMP_M = 0.25
#: A stretch whose root ends less than this far from where it started is not a walk (a walker covers 0.6-0.9 m
#: per second; the bystander the Kinect sometimes tracks instead stands at X = 1.2-1.8 m and moves < 0.35 m).
MIN_WALK_M = 0.5


def clean_tracking(data, f: int, jump: float = TRACKING_JUMP_M, min_walk: float = MIN_WALK_M) -> list[str]:
    """Keep in every recording of a `UCalgaryData` only the walker, in place, and say what was changed.

    A recording is cut at every tracking switch (a root step longer than ``jump`` metres between two frames);
    of the stretches of at least ``f`` frames the one whose root travels furthest (start to end) is kept. If
    none travels ``min_walk`` metres the recording holds no walk and is dropped (its person then has fewer
    walks; a person without a gallery walk cannot be matched and counts as unmatched). On the development
    subjects: sub3/Run2 loses 6 frames of a bystander, sub5/Run3-6 and sub11/Run1 keep the walker's stretch,
    and sub7/Run1 is the bystander all along (standing at X = 1.8 m) and is dropped.
    Returns lines like ``'sub5/Run3: kept frames 82-119 of 120'``."""
    notes, keep = [], []
    for rec in data.recordings:
        root = rec.joints[:, 8]  # SpineBase
        step = np.linalg.norm(np.diff(root, axis=0), axis=1)
        bounds = np.concatenate([[0], np.flatnonzero(~(step <= jump)) + 1, [len(root)]])  # NaN steps cut too
        best, travel = None, -1.0
        for lo, hi in pairwise(bounds):
            if hi - lo >= f:
                t = float(np.linalg.norm(root[hi - 1] - root[lo]))
                if t > travel:
                    best, travel = (int(lo), int(hi)), t
        name = f"sub{rec.subject}/Run{rec.run}"
        if best is None or travel < min_walk:
            notes.append(f"{name}: dropped, no walk (root travels {max(travel, 0.0):.2f} m)")
            continue
        if best != (0, len(root)):
            notes.append(f"{name}: kept frames {best[0]}-{best[1] - 1} of {len(root)}")
            rec.joints = rec.joints[best[0]:best[1]]
        keep.append(rec)
    data.recordings[:] = keep
    return notes


# --- CAGE runs ----------------------------------------------------------------------------------------
def find_run(models_root, dataset: str, f: int, model: str):
    """Newest run folder under ``models_root`` trained on ``dataset`` with window length ``f`` and pretext
    ``model`` (``--best_model``), judged by its ``encoder.json``."""
    import json
    root = Path(models_root)
    if not root.is_dir():
        raise OfflineError(f"{root}: no such models folder (--models-root)")
    found = []
    for meta_path in root.glob("*/encoder.json"):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        flat = _flatten(meta)
        ds = str(flat.get("dataset", "")).upper()
        ff = flat.get("f", flat.get("length"))
        task = flat.get("model", flat.get("task", flat.get("pretext", "rev_rec")))
        if isinstance(task, list):
            task = "rev_rec_plus" if len(task) > 1 else task[0]
        if ds == dataset.upper() and (ff is None or int(ff) == int(f)) and str(task) == model:
            found.append(meta_path.parent)
    if not found:
        raise OfflineError(f"{root}: no run of {dataset} with f={f} and model {model} (looked at */encoder.json)")
    return max(found, key=lambda p: (p / "encoder.pt").stat().st_mtime)


def _flatten(d: dict, out: dict | None = None) -> dict:
    out = {} if out is None else out
    for k, v in d.items():
        if isinstance(v, dict):
            _flatten(v, out)
        else:
            out.setdefault(k, v)
    return out


def resolve_run_dir(name: str, models_root):
    """``--RN_dir``: a path, or a folder name under ``models_root``."""
    for cand in (Path(name), Path(models_root) / name):
        if (cand / "encoder.pt").is_file():
            return cand
    raise OfflineError(f"{name}: not a run folder (no encoder.pt there nor under {models_root})")


def load_train_config(config, dataset: str, f: int, seed: int, device: str = "auto", epochs: int | None = None,
                      rn_epochs: int | None = None):
    """Training config of the harness: the YAML ``config`` (a file or a shipped name), then the overrides
    (`offline.training.config.build_config`)."""
    from offline.training.config import build_config

    return build_config(config, dataset={"CASIA_B_match": "CASIA_B"}.get(dataset, dataset), f=f, seed=seed,
                        device=None if device == "auto" else device, epochs=epochs, rn_epochs=rn_epochs)


def train_cage_run(train: WindowSet, rn_train: WindowSet, out_dir, seed: int, device: str = "auto",
                   config: str | None = None, epochs: int | None = None, rn_epochs: int | None = None,
                   progress: bool = False, init=None):
    """Train an encoder on ``train`` (labels unused) and an RN on the labelled ``rn_train`` windows into
    ``out_dir`` (``encoder.pt|json``, ``rn.pt|json``, as `cagereid train` writes them), with the training
    library's `train_encoder` and `fit_rn`. The RN epoch is chosen on a validation tail of ``rn_train``
    (never on probes). A finished run there is reused, an interrupted encoder training resumes. ``init``: a model
    folder the encoder starts from (fine-tuning, e.g. a model pretrained on synthetic walkers).
    Returns ``out_dir``."""
    from dataclasses import replace

    from cages.features import CageExtractor
    from offline.training.encoder import train_encoder
    from offline.training.rn import fit_rn

    out_dir = Path(out_dir)
    cfg = load_train_config(config, train.dataset, train.f, seed, device, epochs, rn_epochs)
    if (out_dir / "encoder.pt").is_file() and (out_dir / "rn.pt").is_file():
        _check_reusable(out_dir, train, cfg.resolved(), init)
        return out_dir
    command = _harness_command(init)
    if not (out_dir / "encoder.pt").is_file():
        train_encoder(train, cfg, out_dir, seed, cfg.device, progress=progress,
                      resume=(out_dir / "encoder_state.pt").is_file(), command=command, init=init)
    extractor = CageExtractor.from_checkpoint(out_dir, device=cfg.device)
    rcfg = cfg.resolved()
    if rcfg.rn_select == "probe":  # the harness never selects on probes (CAGE_SPEC Q8)
        rcfg = replace(rcfg, rn_select="val")
    fit_rn(extractor, rn_train, rcfg, out_dir, progress=progress, device=cfg.device, command=command)
    return out_dir


def pretrain_synthetic(out_dir, f: int, layout: str, dataset: str = "UCALGARY", spec: SynthPretrain = UCALGARY_PRETRAIN,
                       device: str = "auto", config: str | None = None, epochs: int | None = None,
                       progress: bool = False, seed: int = 0) -> Path:
    """Pretrain one encoder without labels on synthetic walkers (``spec``) into ``out_dir`` with the harness's
    training config (training ``seed``, 0 in the harness; positives: `SynthPretrain.positives`) and return ``out_dir``; a
    finished one there is reused (if trained for the same settings), an interrupted one resumes."""
    from offline.training.encoder import train_encoder

    out_dir = Path(out_dir)
    ws = spec.windows(f, layout, dataset)
    cfg = load_train_config(config, dataset, f, seed, device, epochs)
    if (out_dir / "encoder.pt").is_file():
        _check_reusable(out_dir, ws, cfg.resolved())
        import json

        stored = json.loads((out_dir / "encoder.json").read_text()).get("command", "")
        if stored != _pretrain_command(spec):
            raise OfflineError(f"{out_dir}: pretrained on other data ({stored!r}); use another --out/--runs folder "
                               "or remove it")
        return out_dir
    train_encoder(ws, cfg, out_dir, seed, cfg.device, progress=progress,
                  resume=(out_dir / "encoder_state.pt").is_file(), command=_pretrain_command(spec))
    return out_dir


def _pretrain_command(spec: SynthPretrain) -> str:
    return f"cagereid evaluate (harness pretraining; {spec.describe()})"


def _harness_command(init=None) -> str:
    """What a harness-trained ``encoder.json`` stores as its command (with the model it was fine-tuned from)."""
    return "cagereid evaluate (harness)" + ("" if init is None else f"; encoder init {Path(init)}")


def _check_reusable(run: Path, train: WindowSet, cfg, init=None) -> None:
    """A finished run is reused only if it was trained for this request (f, layout, training settings and the
    model it was fine-tuned from)."""
    import json

    try:
        meta = json.loads((run / "encoder.json").read_text())
    except (OSError, ValueError):
        raise OfflineError(f"{run}: a finished run without a readable encoder.json; remove it or use another --out") from None
    stored = meta.get("train_config", {})
    want = cfg.to_dict()
    keys = ("mode", "hidden", "epochs", "t", "max_shift", "attention", "model", "seed")
    diff = [k for k in keys if k in stored and stored[k] != want.get(k)]
    if meta.get("f") not in (None, train.f):
        diff.insert(0, "f")
    stored_init = str(meta.get("command", "")).partition("; encoder init ")[2] or None
    if str(meta.get("command", "")).startswith("cagereid evaluate (harness)") and stored_init != (
            None if init is None else str(Path(init))):
        diff.append(f"encoder init {stored_init or 'none'}")
    if diff:
        raise OfflineError(f"{run}: finished run trained with other settings ({', '.join(diff)}); use another "
                        "--out/--runs folder or remove it")


# --- entry points -------------------------------------------------------------------------------------
def progress_printer(quiet: bool = False):
    """Status lines on stderr (none when ``quiet``)."""
    from cagereid.progress import stderr_say

    return stderr_say(quiet)


def run_ucalgary(root, f: int, out_dir, seeds: int = 1, methods: tuple[str, ...] = ("cage", "raw-kNN", "D13-kNN"),
                 protocols: tuple[str, ...] = ("p1", "p2"), distances: tuple[str, ...] = DISTANCES,
                 encoder_data: tuple[str, ...] = ("run1", "all"), run_dir=None, device: str = "auto",
                 config: str | None = None, epochs: int | None = None, rn_epochs: int | None = None,
                 say=print, readout: str | None = None, bone_weight: float | None = None,
                 people: tuple[int, ...] | None = None, runs_dir=None, subjects: tuple[int, ...] | None = None,
                 retrieval: Retrieval = UCALGARY_RETRIEVAL, rerank: bool = True, clean: bool = True,
                 progress: bool = False, ensemble: int = 1, init=None,
                 pretrain: SynthPretrain | None = UCALGARY_PRETRAIN,
                 speed_rates: tuple[float, ...] = (1.0,),
                 init_weight: float = UCALGARY_INIT_WEIGHT) -> tuple[list[dict], dict]:
    """The real-data protocol: gallery Run1, probes Run2 (same) and Run3-6 (cross, limp); sub10 dropped.

    ``subjects`` restricts *everything* to these subject numbers (encoder, RN, gallery, probes): the folder as if
    only they had been recorded, i.e. one fold of a cross-validation by subject, which replays the held-back
    protocol on a new population. ``people`` restricts only gallery and probes (P2 only: the encoder and the RN
    still train on every subject's Run1), e.g. to choose a setting on half of the subjects and check it on the
    rest. The per-seed CAGE runs live in ``runs_dir`` (default ``out_dir``), in folders named after the variant,
    the subjects (with ``subjects``) and the seed; finished ones are reused.

    Gallery and probe windows do not overlap (stride f: 20 per 120-frame walk at f = 6). The encoder trains
    without labels on Run1's stride-1 windows (``run1``, comparable to the peers in shared/notes/benchmarks.md)
    and/or on stride-3 windows of every run (``all``, transductive: it sees the probe walks). The RN
    (P1) trains on the labelled Run1 windows. P2 ranks with ``retrieval`` (every method, baselines included);
    ``rerank`` adds rows of the trained CAGEs with k-reciprocal re-ranking (transductive: it uses the other
    probes), named ``... + re-ranking (transductive)``. ``clean``: every recording keeps only its walker
    (`clean_tracking`: cut at tracking switches, a recording without a walk dropped). ``ensemble`` K > 1: each
    seed's CAGEs are K encoders (training seeds ``s, s + seeds, ..., s + (K-1)·seeds``, so the runs of a
    smaller K are reused) combined by `ensemble_method`. ``pretrain`` (improved mode; None = off): first one
    encoder is pretrained without labels on synthetic walkers (`pretrain_synthetic`, into
    ``<runs>/pretrain_synthetic_f<f>``, shared by every seed, variant and fold) and every encoder is fine-tuned
    from it. ``init``: a model folder every encoder is fine-tuned from instead. ``init_weight`` W > 0 (with a
    pretrained or ``init`` encoder): each seed's CAGEs embed with the fine-tuned encoder(s) *and* the encoder they
    started from, combined like an ensemble (`ensemble_method`) with weight W for the starting encoder and 1 - W
    for the fine-tuned one(s): fine-tuning on the normal walks of Run1 alone loses part of what the pretraining
    on limping synthetic walkers taught (0 = the fine-tuned encoder alone, 1 = the starting encoder alone).
    ``speed_rates``: the encoders also train on every walk played at these speeds (`ucalgary_windows`'s
    ``rates``; measured in issue #17, not kept; finished runs are not told apart by it, so give it its own runs
    folder). Returns ``(rows, meta)``.
    """
    if ensemble < 1:
        raise OfflineError(f"--ensemble must be >= 1 (got {ensemble})")
    if not 0.0 <= init_weight <= 1.0:
        raise OfflineError(f"--init-weight must be in [0, 1] (got {init_weight})")
    if init is not None and not (Path(init) / "encoder.pt").is_file():
        raise OfflineError(f"--init {init}: not a model folder (need encoder.pt and encoder.json)")
    from offline import protocols as P
    from offline.datasets.ucalgary import load_ucalgary, ucalgary_windows

    data = load_ucalgary(root)
    cleaned = clean_tracking(data, f) if clean else []
    if subjects:
        missing = sorted(set(subjects) - set(data.subjects))
        if missing:
            raise OfflineError(f"--subjects: no such subject(s) {missing} (have {data.subjects})")
        if len(set(subjects)) < 2:
            raise OfflineError("--subjects: give at least two subjects (retrieval needs a choice)")
    subj = tuple(sorted(set(subjects))) if subjects else None
    gallery = ucalgary_windows(data, f, P.UCALGARY_RUNS["gallery"], stride=f, subjects=subj)
    pairs = [(p.name, ucalgary_windows(data, f, p.runs_probe, stride=f, subjects=subj))
             for p in P.UCALGARY_PROTOCOLS]
    if people:
        missing = sorted(set(people) - {int(x) for x in np.unique(gallery.pids)})
        if missing:
            raise OfflineError(f"--people: no such subject(s) {missing} (have {sorted(np.unique(gallery.pids).tolist())})")
        if "p1" in protocols:
            raise OfflineError("--people needs --protocol p2 (the recognition network knows every subject)")

        def keep(ws):
            return ws.subset(np.flatnonzero(np.isin(ws.pids, people)))

        gallery, pairs = keep(gallery), [(n, keep(w)) for n, w in pairs]
    meta = {"dataset": "UCALGARY", "data_root": str(root), "f": f, "people": len(data.subjects),
            "gallery": f"Run1, {gallery.n} windows (stride f)",
            "probes": ", ".join(f"{n}: {w.split} {w.n} windows" for n, w in pairs),
            "dropped duplicates": ", ".join("/".join(Path(d).relative_to(data.root).parts[:2]) + " = "
                                            + "/".join(Path(k).relative_to(data.root).parts[:2])
                                            for d, k in data.duplicates) or "none",
            "skipped files": len(data.skipped), "seeds": seeds, "P2 retrieval": retrieval.describe(),
            "tracking cleaned": ("; ".join(cleaned) or "nothing to change") if clean else "off"}
    if subj:
        meta["subjects"] = ", ".join(str(x) for x in subj) + " (everything restricted to them: encoder, RN, gallery, probes)"
        meta["people"] = len(subj)
    if people:
        meta["people"] = ", ".join(str(x) for x in people)
    rows: list[dict] = []
    for m in baseline_methods(gallery, tuple(x for x in methods if x != "cage")):
        g_emb = m.embed(gallery.windows)
        for name, probe in pairs:
            rows += evaluate_pair(m, gallery, probe, name, protocols, distances, gallery_emb=g_emb,
                                  retrieval=retrieval)
        say(f"{m.name}: done")
    if "cage" not in methods:
        return rows, meta
    cage_runs: list[tuple[str, int | None, Path]] = []
    if run_dir is not None:
        if ensemble > 1:
            raise OfflineError("--ensemble trains its members; it cannot be combined with --model/--best_model")
        cage_runs.append(("CAGEs", None, Path(run_dir)))
    else:
        rn_train = ucalgary_windows(data, f, P.UCALGARY_RUNS["gallery"], stride=1, subjects=subj)
        if init is None and pretrain is not None:
            faithful = load_train_config(config, "UCALGARY", f, 0, device, epochs).resolved().faithful
            if faithful:
                meta["synthetic pretraining"] = "off (faithful mode)"
            else:
                d = Path(runs_dir or out_dir) / f"pretrain_synthetic_f{f}"
                reuse = (d / "encoder.pt").is_file()
                say(f"synthetic pretraining: {'reusing ' if reuse else ''}{d} ({pretrain.describe()})")
                init = pretrain_synthetic(d, f, rn_train.layout, "UCALGARY", pretrain, device, config, epochs,
                                          progress)
                meta["synthetic pretraining"] = f"{pretrain.describe()}; every encoder fine-tuned from {d}"
        tag = "" if subj is None else "_s" + "-".join(str(x) for x in subj)
        steps = Steps(len(encoder_data) * seeds * ensemble, say)
        for variant in encoder_data:
            runs = {"run1": P.UCALGARY_RUNS["gallery"], "all": (1, 2, 3, 4, 5, 6)}.get(variant)
            if runs is None:
                raise OfflineError(f"--encoder-data: unknown variant {variant!r} (use run1 and/or all)")
            # all runs: stride 3 (about twice Run1's stride-1 count) keeps the CPU time of 6 walks in check
            enc_train = ucalgary_windows(data, f, runs, stride=1 if variant == "run1" else 3, subjects=subj,
                                         rates=speed_rates)
            label = "CAGEs (Run1 encoder)" if variant == "run1" else "CAGEs (all runs, transductive)"
            for seed in range(seeds * ensemble):
                d = Path(runs_dir or out_dir) / f"cage_{variant}{tag}_seed{seed}"
                reuse = (d / "encoder.pt").is_file() and (d / "rn.pt").is_file()
                if reuse:
                    say(f"{label} seed {seed}: reusing the finished run {d}")
                else:
                    say(f"{label} seed {seed}: training into {d} ({enc_train.n} encoder windows, {rn_train.n} RN windows)")
                steps.start()
                train_cage_run(enc_train, rn_train, d, seed, device, config, epochs, rn_epochs, progress, init)
                steps.done(f"{label} seed {seed}: {'reused' if reuse else 'trained'}", timed=not reuse)
                cage_runs.append((label, seed, d))
    groups: list[tuple[str, int | None, list[Path]]] = []
    for label, seed, d in cage_runs:  # seed s + k·seeds is member k of ensemble s
        s = seed if seed is None else seed % seeds
        g = next((x for x in groups if x[0] == label and x[1] == s), None)
        if g is None:
            groups.append((label, s, [d]))
        else:
            g[2].append(d)
    if init is not None:
        meta["encoder init"] = str(init)
    if ensemble > 1:
        meta["ensemble"] = (f"{ensemble} encoders per seed (training seeds s, s+{seeds}, ...): embeddings "
                            "concatenated / sqrt(K), RN scores averaged")
    keep = init_weight > 0 and init is not None and run_dir is None
    if keep:
        meta["encoder kept"] = (f"every seed's CAGEs also embed with the encoder they were fine-tuned from ({init}), "
                                f"weight {init_weight:g} of the squared distance; the RN is the fine-tuned one")
    for label, seed, dirs in groups:
        members = [cage_method(d, label, seed, device, readout, bone_weight) for d in dirs]
        weights = None
        if keep:
            members.append(cage_method(init, label, seed, device, readout, bone_weight))
            weights = [(1 - init_weight) / len(dirs)] * len(dirs) + [init_weight]
        m = ensemble_method(members, label, seed, weights)
        g_emb = m.embed(gallery.windows)
        for name, probe in pairs:
            p_emb = m.embed(probe.windows)
            rows += evaluate_pair(m, gallery, probe, name, protocols, distances, gallery_emb=g_emb,
                                  probe_emb=p_emb, retrieval=retrieval)
            if rerank and "p2" in protocols and "transductive" not in label:
                mr = Method(f"{label} + re-ranking (transductive)", m.embed, None, seed, m.note)
                rows += evaluate_pair(mr, gallery, probe, name, ("p2",), distances, gallery_emb=g_emb,
                                      probe_emb=p_emb, retrieval=replace(retrieval, rerank=True))
        say(f"{label}{'' if seed is None else f' seed {seed}'}: evaluated")
    meta["cage runs"] = ", ".join(str(d) for _, _, d in cage_runs)
    return rows, meta


def run_dataset(root, dataset: str, f: int, layout: str = "auto", view: int | None = None,
                methods: tuple[str, ...] = ("cage", "raw-kNN", "D13-kNN"), protocols: tuple[str, ...] = ("p1", "p2"),
                distances: tuple[str, ...] = DISTANCES, run_dir=None, train: bool = False, seeds: int = 1,
                out_dir=None, device: str = "auto", config: str | None = None, epochs: int | None = None,
                rn_epochs: int | None = None, say=print, readout: str | None = None,
                bone_weight: float | None = None, progress: bool = False,
                retrieval: Retrieval = PLAIN) -> tuple[list[dict], dict]:
    """Every gallery/probe pair of a benchmark in the CAGE or P2 layout. CAGEs come from ``run_dir`` or, with
    ``train``, are trained per seed (and per CASIA-B view) on the training split; otherwise only baselines."""
    layout = detect_layout(root, dataset, f) if layout == "auto" else layout
    pairs = load_pairs(root, dataset, f, layout, view)
    meta = {"dataset": dataset, "data_root": str(root), "layout": layout, "f": f, "seeds": seeds,
            "pairs": ", ".join(p.name for p, _ in pairs), "P2 retrieval": retrieval.describe()}
    rows: list[dict] = []
    cache: dict[int, list[Method]] = {}
    trained: list[str] = []
    for proto, splits in pairs:
        cages: list[Method] = []
        if "cage" in methods:
            if run_dir is not None:
                cages = cache.setdefault(0, [cage_method(run_dir, "CAGEs", None, device, readout, bone_weight)])
            elif train:
                if id(splits) not in cache:
                    tag = "" if proto.view is None else f"_view{proto.view}"
                    ms = []
                    steps = Steps(seeds, say)
                    for seed in range(seeds):
                        d = Path(out_dir) / f"cage_{dataset}_f{f}{tag}_seed{seed}"
                        say(f"CAGEs seed {seed}: training into {d}")
                        steps.start()
                        train_cage_run(splits["train"], splits["train"] if proto.gallery == "train" else splits[proto.gallery],
                                       d, seed, device, config, epochs, rn_epochs, progress)
                        steps.done(f"CAGEs seed {seed}{tag}: trained")
                        ms.append(cage_method(d, "CAGEs", seed, device, readout, bone_weight))
                        trained.append(str(d))
                    cache[id(splits)] = ms
                cages = cache[id(splits)]
        rows += evaluate_protocols([(proto, splits)], cages, protocols,
                                   tuple(x for x in methods if x != "cage"), distances, retrieval=retrieval)
        say(f"{proto.name}: evaluated {len(cages)} CAGE model(s) and the baselines")
    if trained:
        meta["cage runs"] = ", ".join(trained)
    return rows, meta
