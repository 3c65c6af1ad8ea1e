"""Exploration of issue #17's third round on the encoders that docs/ucalgary_cv/cv.sh trained (not in the CLI
because not kept). Every subcommand prints the numbers per fold (mean of 3 seeds); they reproduce the harness's
numbers for the settings they share.

  ensemble RUNS [RUNS ...]   each seed's CAGEs = the fine-tuned encoders of several RUNS folders (or model
                             folders, e.g. a pretraining) together, equal weights: the six goal numbers
  gallery-speeds RUNS        gallery walks also enrolled at slower speeds (window R1 / mAP, sequence R1)
  walk-distances RUNS        walk-to-walk distances other than the nearest-window mean (sequence Rank-1)

usage: python docs/ucalgary_cv/explore.py SUBCOMMAND RUNS... [--data ../shared/data/ucalgary_gait]"""
import argparse
from pathlib import Path

import numpy as np

from cages import matcher
from offline import evaluate as E
from offline import protocols as P
from offline.datasets.ucalgary import load_ucalgary, ucalgary_windows
from offline.metrics import pairwise_distance, rank_metrics

FOLDS = ["1,3,5,7,9,12,14", "2,4,6,8,11,13", "1,2,3,4,5,6,7", "8,9,11,12,13,14"]
SPEEDS = [(1.0,), (1.0, 0.8), (1.0, 0.7), (1.0, 0.8, 0.6), (1.0, 0.9, 0.8, 0.7, 0.6), (1.0, 1.2, 0.8)]


def folds(data):
    for fold in FOLDS:
        subj = tuple(int(x) for x in fold.split(","))
        gal = ucalgary_windows(data, 6, P.UCALGARY_RUNS["gallery"], stride=6, subjects=subj)
        pairs = [(p.name, ucalgary_windows(data, 6, p.runs_probe, stride=6, subjects=subj)) for p in P.UCALGARY_PROTOCOLS]
        yield fold, subj, gal, pairs


def member(folder: Path, subj, seed):
    run = folder if (folder / "encoder.pt").is_file() else folder / f"cage_run1_s{'-'.join(map(str, subj))}_seed{seed}"
    return E.cage_method(run, "CAGEs", seed, "cpu")


def ensemble(data, runs):
    means = []
    for fold, subj, gal, pairs in folds(data):
        acc = {}
        for seed in range(3):
            m = E.ensemble_method([member(r, subj, seed) for r in runs], "CAGEs", seed)
            g = m.embed(gal.windows)
            for name, probe in pairs:
                for r in E.evaluate_pair(m, gal, probe, name, ("p2",), ("euclidean",), gallery_emb=g,
                                         retrieval=E.UCALGARY_RETRIEVAL):
                    acc.setdefault((name, r["level"]), []).append((r["rank1"], r["mAP"]))
        v = []
        for name, _ in pairs:
            w, q = np.mean(acc[(name, "window")], 0), np.mean(acc[(name, "sequence")], 0)
            v += [100 * w[0], 100 * w[1], 100 * q[0]]
        means.append(np.mean(v))
        print(f"fold {fold}: {v[0]:.1f}/{v[1]:.1f} {v[2]:.1f} | {v[3]:.1f}/{v[4]:.1f} {v[5]:.1f} [{np.mean(v):.1f}]")
    print(f"mean of the six over the folds: {np.mean(means):.2f}")


def _walk_distances(d, probe_walk, gallery_walk):
    out = {"nearest (default)": matcher.nearest_distance_pool(d, probe_walk, gallery_walk)[2]}
    out["symmetric Chamfer"] = 0.5 * (out["nearest (default)"] + matcher.nearest_distance_pool(d.T, gallery_walk, probe_walk)[2].T)
    walks, gw = np.unique(probe_walk), np.unique(gallery_walk)
    near = np.full((len(d), len(gw)), np.inf)
    np.minimum.at(near.T, np.searchsorted(gw, gallery_walk), d.T)
    pw = np.searchsorted(walks, probe_walk)
    trim = np.zeros((len(walks), len(gw)))
    for i in range(len(walks)):
        x = np.sort(near[pw == i], axis=0)
        trim[i] = x[:max(1, len(x) // 2)].mean(0)
    out["50% trimmed mean"] = trim
    ranks, z = np.zeros((len(walks), len(gw))), np.zeros((len(walks), len(gw)))
    np.add.at(ranks, pw, near.argsort(1).argsort(1).astype(float))
    np.add.at(z, pw, (near - near.mean(1, keepdims=True)) / (near.std(1, keepdims=True) + 1e-9))
    out["mean rank"], out["per-window z-score"] = ranks, z
    return out


def explore(data, runs, what):
    res = {}
    for fold, subj, gal0, pairs in folds(data):
        for seed in range(3):
            m = member(runs, subj, seed)
            probes = {name: (probe, m.embed(probe.windows)) for name, probe in pairs}
            for key in (SPEEDS if what == "gallery-speeds" else [(1.0,)]):
                gal = ucalgary_windows(data, 6, P.UCALGARY_RUNS["gallery"], stride=6, subjects=subj, rates=key)
                gw, gp, _ = E.sequence_groups(gal)
                g = m.embed(gal.windows)
                for name, (probe, p) in probes.items():
                    pw, pp, _ = E.sequence_groups(probe)
                    d = pairwise_distance(p, g, "euclidean")
                    if what == "gallery-speeds":
                        seq = rank_metrics(matcher.nearest_distance_pool(d, pw, gw)[2], pp, gp, min(20, len(gp)))
                        win = rank_metrics(pairwise_distance(p, matcher.smooth_gallery(g, gw, 0.5), "euclidean"),
                                           probe.pids, gal.pids, 20)
                        cell = (win["rank1"], win["mAP"], seq["rank1"])
                        res.setdefault((f"speeds {key}", name), {}).setdefault(fold, []).append(cell)
                    else:
                        for k, dist in _walk_distances(d, pw, gw).items():
                            r1 = rank_metrics(dist, pp, gp, min(20, len(gp)))["rank1"]
                            res.setdefault((k, name), {}).setdefault(fold, []).append((r1,))
    for (k, name), per_fold in res.items():
        cells = ["/".join(f"{100 * x:.1f}" for x in np.mean(v, 0)) for v in per_fold.values()]
        print(f"{k:28s} {name:15s} " + "  ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("ensemble", "gallery-speeds", "walk-distances"))
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--data", default="../shared/data/ucalgary_gait")
    args = ap.parse_args()
    data = load_ucalgary(args.data)
    E.clean_tracking(data, 6)
    if args.what == "ensemble":
        ensemble(data, args.runs)
    else:
        explore(data, args.runs[0], args.what)


if __name__ == "__main__":
    import sys

    from offline.datasets.base import DatasetError
    from offline.errors import OfflineError

    try:
        main()
    except (OfflineError, DatasetError) as exc:
        sys.exit(f"error: {exc}")
