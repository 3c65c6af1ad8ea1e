"""`cagereid bench missing-joints`: how each missing-joint policy does on real and degraded skeletons (issue #14).

Two development sets, both optional (a table per set found):

* ``--tracks DIR``: tracks files from ``cagereid extract`` of ``ucb_recognition/*.avi`` (person 001 in 8 clips
  at 5 views, person 002 in one) and any other clips (e.g. ``opencv_vtest.avi``: every track there is another
  person). Per policy and MediaPipe visibility threshold: which clips enrol (>= 5 windows at the live stride),
  and leave-one-clip-out re-identification of person 001: each of 001's clips is a probe, the gallery is 001's
  other clips plus every other clip's tracks (002 and the vtest pedestrians as distractors). Window Rank-1 =
  probe windows whose nearest gallery window is 001's; sequence Rank-1 = clips whose mean embedding is nearest
  to one of 001's clips.
* ``--ucalgary DIR``: the UCalgary proxy. Walks converted to ``kinect_v1``, degraded like monocular MediaPipe
  output (`offline.degrade.monocular_like`: hip-centred, depth noise, far arm hidden for the whole walk, far
  leg in bursts; the far side drawn per walk), gallery Run1 / probe Run2, 13 people (the duplicate sub10
  dropped). Window Rank-1 / mAP and sequence Rank-1 (mean embedding per walk), raw-kNN and the encoder.

Methods: raw-kNN (`offline.baselines.RawCoords`) and the encoder given by ``--model`` (default: the shipped live model).
Nothing here is trained, so subject folds are not needed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cagereid.bench import show

HELP = "Missing-joint policies on real side-view clips and the degraded UCalgary proxy (accuracy tables)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracks", default=None, help="folder of tracks files (.npz from `cagereid extract`); "
                   "names starting with NNN_001_ are person 001 of ucb_recognition")
    p.add_argument("--ucalgary", default=None, help="the ucalgary_gait folder (UCalgary proxy)")
    p.add_argument("--model", default=None, help="encoder folder (default: the shipped live model, cages/pretrained/live)")
    p.add_argument("--policies", default="hold,mirror,root", help="missing-joint policies to compare")
    p.add_argument("--visibility", default="0.5,0", help="MediaPipe visibility thresholds for --tracks")
    p.add_argument("--seed", type=int, default=0, help="degradation seed (UCalgary proxy)")


def _methods(model: str | None):
    from cages.features import CageExtractor
    from stream.identify import DEFAULT_MODEL

    enc = CageExtractor.from_checkpoint(model or DEFAULT_MODEL, device="cpu")
    return enc, {"encoder": lambda g, p: (_np(enc.embed(g)), _np(enc.embed(p)))}


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _raw(layout: str, J: int):
    from offline.baselines import make_baseline

    def run(g, p):
        b = make_baseline("raw-kNN", layout, J).fit(g)
        return b.embed(g), b.embed(p)
    return run


def _scores(g_emb, g_pid, g_seq, p_emb, p_pid, p_seq) -> dict:
    """Window Rank-1 / mAP and sequence Rank-1 (mean embedding per walk), Euclidean."""
    from offline.metrics import pairwise_distance, rank_metrics

    w = rank_metrics(pairwise_distance(p_emb, g_emb), p_pid, g_pid, min(10, len(g_pid)))
    gu, gi = np.unique(g_seq, return_inverse=True)
    pu, pi = np.unique(p_seq, return_inverse=True)
    gs_pid = np.array([g_pid[g_seq == s][0] for s in gu])
    ps_pid = np.array([p_pid[p_seq == s][0] for s in pu])
    mean = lambda e, i, n: np.stack([e[i == k].mean(0) for k in range(n)])  # noqa: E731 - one embedding per walk
    s = rank_metrics(pairwise_distance(mean(p_emb, pi, len(pu)), mean(g_emb, gi, len(gu))),
                     ps_pid, gs_pid, min(10, len(gu)))
    hits = int(round(s["rank1"] * s["n_probes"]))
    return {"w_r1": 100 * w["rank1"], "w_map": 100 * w["mAP"], "s_r1": 100 * s["rank1"],
            "s_hits": f"{hits}/{s['n_probes']}"}


def ucalgary_proxy(root: str, policies: list[str], methods: dict, seed: int, f: int, steps=None) -> list[dict]:
    from offline.datasets.ucalgary import load_ucalgary
    from offline.degrade import monocular_like
    from offline.video_manifest import windows_of_track
    from pose.convert import convert
    from pose.layouts import get_layout

    data = load_ucalgary(root)
    lay = get_layout("kinect_v1")
    rng = np.random.default_rng(seed)
    walks = {}  # (subject, run) -> degraded (joints, valid), clean joints
    for r in data.recordings:
        if r.run not in (1, 2):
            continue
        clean, _ = convert(r.joints, "ucalgary18", "kinect_v1")
        walks[(r.subject, r.run)] = (monocular_like(clean, lay, rng), clean)
    rows = []
    for variant in ["clean"] + policies:
        if steps is not None:
            steps.start()
        sets = {1: ([], [], []), 2: ([], [], [])}
        for (subj, run), ((joints, valid), clean) in sorted(walks.items()):
            if variant == "clean":
                w = windows_of_track(clean, np.isfinite(clean).all(-1), "kinect_v1", f, 1, "hold")
            else:
                w = windows_of_track(joints, valid, "kinect_v1", f, 1, variant)
            W, P, S = sets[run]
            W.append(w)
            P += [subj] * len(w)
            S += [subj * 10 + run] * len(w)
        g, p = [(np.concatenate(W), np.array(P), np.array(S)) for W, P, S in (sets[1], sets[2])]
        for name, run in {"raw-kNN": _raw("kinect_v1", lay.J), **methods}.items():
            ge, pe = run(g[0], p[0])
            rows.append({"set": "UCalgary proxy", "policy": variant, "method": name,
                         **_scores(ge, g[1], g[2], pe, p[1], p[2]), "windows": len(g[0]) + len(p[0])})
        if steps is not None:
            steps.done(f"UCalgary proxy, {variant}")
    return rows


def ucb(folder: str, policies: list[str], thresholds: list[float], methods: dict, f: int, stride: int, steps=None):
    from offline.video_manifest import track_joints, windows_of_track
    from pose.extract import load_tracks

    from offline.errors import OfflineError

    files = sorted(Path(folder).glob("*.npz"))
    if not files:
        raise OfflineError(f"{folder}: no .npz tracks files")
    enrol_rows, rows = [], []
    for vis in thresholds:
        for pol in policies:
            if steps is not None:
                steps.start()
            clips = []  # (name, person, windows at stride 1)
            enrolled = []
            for path in files:
                res = load_tracks(path)
                person = "001" if "_001_" in path.name else ("002" if "_002_" in path.name else None)
                for tr in res.tracks:
                    if person is not None and tr is not res.main_track():
                        continue
                    joints, valid = track_joints(path, "kinect_v1", tr.track_id, vis)
                    w = windows_of_track(joints, valid, "kinect_v1", f, 1, pol)
                    if person is not None:
                        n_live = len(windows_of_track(joints, valid, "kinect_v1", f, stride, pol))
                        enrolled.append(f"{path.stem}:{n_live}")
                    if len(w):
                        clips.append((path.stem, person or f"{path.stem}#{tr.track_id}", w))
            enrol_rows.append({"visibility": vis, "policy": pol, "enrolled": sum(int(e.split(":")[1]) >= 5 for e in enrolled),
                               "of": len(enrolled), "windows": " ".join(enrolled)})
            probes = [c for c in clips if c[1] == "001"]
            for name, run in {"raw-kNN": _raw("kinect_v1", 20), **methods}.items():
                w_hits = w_n = s_hits = 0
                for k, (pname, _, pw) in enumerate(probes):
                    gal = [c for c in clips if c[0] != pname]
                    gw = np.concatenate([c[2] for c in gal])
                    g_pid = np.concatenate([[c[1]] * len(c[2]) for c in gal])
                    g_seq = np.concatenate([[i] * len(c[2]) for i, c in enumerate(gal)])
                    ge, pe = run(gw, pw)
                    from offline.metrics import pairwise_distance
                    d = pairwise_distance(pe, ge)
                    w_hits += int((g_pid[d.argmin(1)] == "001").sum())
                    w_n += len(pw)
                    means = np.stack([ge[g_seq == i].mean(0) for i in range(len(gal))])
                    s_hits += int(gal[int(pairwise_distance(pe.mean(0, keepdims=True), means).argmin())][1] == "001")
                rows.append({"set": "ucb 001 leave-one-clip-out", "visibility": vis, "policy": pol, "method": name,
                             "w_r1": 100 * w_hits / max(w_n, 1), "s_hits": f"{s_hits}/{len(probes)}",
                             "gallery_people": len({c[1] for c in clips})})
            if steps is not None:
                steps.done(f"ucb clips, visibility {vis:g}, policy {pol}")
    return enrol_rows, rows


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    if not args.tracks and not args.ucalgary:
        from offline.errors import OfflineError

        raise OfflineError("give --tracks DIR and/or --ucalgary DIR")
    enc, methods = _methods(args.model)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    console = Console()
    from cagereid.progress import Steps, stderr_say

    thresholds = [float(v) for v in args.visibility.split(",")]
    steps = Steps((len(thresholds) * len(policies) if args.tracks else 0)
                  + (1 + len(policies) if args.ucalgary else 0), stderr_say(args.quiet))
    if args.tracks:
        from stream.config import load_config

        stride = load_config(None).stride
        enrol, rows = ucb(args.tracks, policies, thresholds, methods, enc.f, stride, steps)
        t = Table(title=f"Enrolment of the ucb_recognition clips (>= 5 windows, f={enc.f}, live stride {stride})")
        for c in ("visibility", "policy", "enrolled", "windows per clip"):
            t.add_column(c)
        for r in enrol:
            t.add_row(f"{r['visibility']:g}", r["policy"], f"{r['enrolled']}/{r['of']}", r["windows"])
        show(console, t)
        _table(console, "ucb person 001, leave one clip out (gallery: 001's other clips + every other track)",
               rows, ("visibility", "policy", "method", "w_r1", "s_hits", "gallery_people"))
    if args.ucalgary:
        rows = ucalgary_proxy(args.ucalgary, policies, methods, args.seed, enc.f, steps)
        _table(console, f"UCalgary proxy (kinect_v1, monocular-like degradation, seed {args.seed}): gallery Run1, "
               "probe Run2", rows, ("policy", "method", "w_r1", "w_map", "s_r1", "s_hits", "windows"))
    return 0


def _table(console, title: str, rows: list[dict], cols: tuple[str, ...]) -> None:
    from rich.table import Table

    t = Table(title=title)
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*[(f"{r[c]:.1f}" if isinstance(r[c], float) and c not in ("visibility",) else
                     f"{r[c]:g}" if isinstance(r[c], float) else str(r[c])) for c in cols])
    show(console, t)
