"""Plots that explain an evaluation or a training run (matplotlib, Agg), each written atomically to a PNG.

* `plot_scores`: genuine vs impostor score distributions of the live open-set decision with the acceptance
  score the live stage calibrates on the gallery: the plot to read before setting ``accept_score``.
* `plot_cmc`: CMC curves of every method on one axis, mean over seeds with a band (min..max over seeds).
* `plot_confusion`: a P1 confusion matrix normalised per row (true person), titled with its seed.
* `plot_embedding`: a 2-D PCA map of probe embeddings coloured by person.
* `plot_training`: loss curves (and validation loss/accuracy) of a run's ``log.jsonl``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cages.io import atomic_path
from offline.errors import OfflineError


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ordered(values) -> list:
    """The distinct values in first-seen order."""
    seen = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def save(fig, path: str | Path, dpi: int = 110) -> Path:
    """``fig`` -> PNG at ``path`` through a temp file + rename (never a half-written plot), then closed."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    _plt().close(fig)
    return path


def open_set_rates(open_set: dict) -> dict:
    """At the acceptance score: the fraction of genuine queries accepted and of impostor queries rejected."""
    t = open_set.get("accept_score")
    g, i = np.asarray(open_set["genuine"]), np.asarray(open_set["impostor"])
    if t is None:
        return {}
    return {"genuine_accepted": float((g >= t).mean()) if len(g) else float("nan"),
            "impostor_rejected": float((i < t).mean()) if len(i) else float("nan")}


def plot_scores(open_set: dict, title: str, path: str | Path) -> Path:
    """Histograms of genuine and impostor scores with the acceptance score as a vertical line."""
    plt = _plt()
    g, i = np.asarray(open_set["genuine"], float), np.asarray(open_set["impostor"], float)
    if not len(g) and not len(i):
        raise OfflineError(f"{title}: no scores to plot")
    allv = np.concatenate([g, i])
    bins = np.linspace(allv.min(), allv.max(), 41) if allv.max() > allv.min() else 10
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if len(g):
        ax.hist(g, bins=bins, alpha=0.55, color="C2", density=True, label=f"genuine (own person), n={len(g)}")
    if len(i):
        ax.hist(i, bins=bins, alpha=0.55, color="C3", density=True, label=f"impostor (best other person), n={len(i)}")
    t = open_set.get("accept_score")
    if t is not None:
        r = open_set_rates(open_set)
        ax.axvline(t, color="black", ls="--",
                   label=f"accept_score {t:.3g}: {100 * r['genuine_accepted']:.0f}% genuine accepted, "
                         f"{100 * r['impostor_rejected']:.0f}% impostors rejected")
    what = "minus euclidean distance" if open_set.get("metric") == "euclidean" else "cosine similarity"
    ax.set_xlabel(f"match score ({what}; higher = more alike)")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def plot_cmc(summary: list[dict], protocol: str, split: str, path: str | Path, distance: str = "euclidean") -> Path:
    """CMC curves of every method on one axis (window solid, sequence dashed): the mean over seeds, with a
    shaded band from the worst to the best seed when there are several."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    rows = [s for s in summary if s["protocol"] == protocol and s["split"] == split and "cmc" in s
            and (protocol == "P1" or s["distance"] == distance)]
    colours = {m: f"C{i}" for i, m in enumerate(ordered(s["method"] for s in rows))}
    for s in rows:
        cmc = 100 * np.asarray(s["cmc"])
        k = np.arange(1, len(cmc) + 1)
        n = s.get("n_seeds", 1)
        ax.plot(k, cmc, ("-" if s["level"] == "window" else "--"), color=colours[s["method"]], marker=".",
                label=f"{s['method']} ({s['level']})" + (f", {n} seeds" if n > 1 else ""))
        if n > 1 and "cmc_min" in s:
            ax.fill_between(k, 100 * np.asarray(s["cmc_min"]), 100 * np.asarray(s["cmc_max"]),
                            color=colours[s["method"]], alpha=0.15, lw=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("rank k")
    ax.set_ylabel("identification rate CMC(k) (%)")
    ax.set_ylim(0, 101)
    what = "RN / kNN scores" if protocol == "P1" else f"{distance} distance"
    ax.set_title(f"{split}: {protocol} CMC, {what} (band: min..max over seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save(fig, path)


def normalise_rows(conf) -> np.ndarray:
    """Counts -> fraction of each true person's probes given to each predicted person (empty rows stay 0)."""
    conf = np.asarray(conf, float)
    return conf / np.maximum(conf.sum(axis=1, keepdims=True), 1)


def plot_confusion(row: dict, path: str | Path) -> Path:
    """The P1 confusion matrix of one result row (rows: true person, columns: predicted), normalised per row."""
    plt = _plt()
    counts = np.asarray(row["confusion"])
    conf = normalise_rows(counts)
    classes = row["classes"]
    size = min(10.0, 3.0 + 0.35 * len(classes))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(conf, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true person's probes")
    if len(classes) <= 30:
        ax.set_xticks(range(len(classes)), [str(c) for c in classes], fontsize=7, rotation=90)
        ax.set_yticks(range(len(classes)), [str(c) for c in classes], fontsize=7)
        for (i, j), v in np.ndenumerate(conf):
            if v >= 0.005:
                ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if v > 0.5 else "black")
    ax.set_xlabel("predicted person")
    ax.set_ylabel("true person")
    acc = np.trace(counts) / max(counts.sum(), 1)
    seed = row.get("seed")
    ax.set_title(f"{row['method']} – {row['split']} ({row['level']}), "
                 f"{'deterministic' if seed is None else f'seed {seed}'}, Rank-1 {100 * acc:.1f}% (row %)", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def plot_embedding(emap: dict, title: str, path: str | Path) -> Path:
    """Scatter of a 2-D embedding map (``offline.evaluate.embedding_map``), one colour per person."""
    plt = _plt()
    xy, pids = np.asarray(emap["xy"], float), np.asarray(emap["pids"])
    if xy.ndim != 2 or len(xy) < 2:
        raise OfflineError(f"{title}: fewer than two embeddings to map")
    people = np.unique(pids)
    cmap = plt.get_cmap("tab20" if len(people) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for n, p in enumerate(people):
        sel = pids == p
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.7, color=cmap(n % cmap.N), label=str(p))
    ev = emap.get("explained") or [float("nan")] * 2
    ax.set_xlabel(f"PC1 ({100 * ev[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * ev[1]:.0f}% of variance)")
    ax.set_title(title, fontsize=9)
    if len(people) <= 30:
        ax.legend(fontsize=6, markerscale=2, ncol=2, title="person", title_fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def training_log(run: str | Path) -> tuple[Path, list[dict]]:
    """The records of a training run's ``log.jsonl`` (the run folder or the file itself)."""
    from offline.training.common import read_jsonl

    path = Path(run)
    if path.is_dir():
        path = path / "log.jsonl"
    if not path.is_file():
        raise OfflineError(f"{path}: no training log (a `cagereid train` run folder has log.jsonl)")
    try:
        recs = [r for r in read_jsonl(path) if "epoch" in r and "phase" in r]
    except (OSError, ValueError) as exc:
        raise OfflineError(f"{path}: not a training log ({exc})") from None
    if not recs:
        raise OfflineError(f"{path}: no epoch records yet")
    return path, recs


def plot_training(run: str | Path, path: str | Path | None = None, title: str = "") -> Path:
    """One panel per training phase (encoder, rn): training loss and validation loss per epoch, and the
    validation accuracy on a second axis where logged. A resumed run's repeated epochs keep the latest record.
    Written to ``path`` (default ``training.png`` next to the log)."""
    plt = _plt()
    log, recs = training_log(run)
    phases = ordered(r["phase"] for r in recs)
    fig, axes = plt.subplots(1, len(phases), figsize=(5.2 * len(phases), 3.8), squeeze=False)
    for ax, phase in zip(axes[0], phases):
        by_epoch = {int(r["epoch"]): r for r in recs if r["phase"] == phase}  # last record of an epoch wins
        ep = np.array(sorted(by_epoch))
        rs = [by_epoch[e] for e in ep]
        for key, style in (("loss", "-"), ("val_loss", "--")):
            ys = np.array([r.get(key, np.nan) for r in rs], float)
            if np.isfinite(ys).any():
                ax.plot(ep, ys, style, marker=".", label=key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(f"{phase}", fontsize=9)
        ax.grid(alpha=0.3)
        acc = np.array([r.get("acc_val", np.nan) for r in rs], float)
        lines, labels = ax.get_legend_handles_labels()
        if np.isfinite(acc).any():
            ax2 = ax.twinx()
            ax2.plot(ep, 100 * acc, ":", color="C2", marker=".", label="val accuracy")
            ax2.set_ylabel("validation accuracy (%)")
            l2, lb2 = ax2.get_legend_handles_labels()
            lines, labels = lines + l2, labels + lb2
        ax.legend(lines, labels, fontsize=7, loc="upper right")
    fig.suptitle(title or str(log.parent), fontsize=9)
    fig.tight_layout()
    return save(fig, path if path is not None else log.parent / "training.png")
