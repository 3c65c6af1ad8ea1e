"""Reports of evaluation runs: ``report.json``, ``report.md`` and PNG plots, and a multi-run comparison.

Input: the flat rows of `offline.evaluate` (one per method x protocol x split x level x distance x seed).
`summarize` folds the seeds into mean ± std (a method evaluated once, e.g. a deterministic baseline, shows
a plain number). Plots (matplotlib, Agg): one CMC figure per protocol and split with every method on one
axis (window level solid, sequence level dashed), and the P1 confusion matrix of each method and split.
Percentages everywhere in the Markdown; fractions in the JSON.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from cages.io import write_json, write_text
from offline.errors import OfflineError

METRICS = ("rank1", "rank5", "rank10", "mAP", "nAUC_roc", "nAUC_cmc")
KEY = ("method", "protocol", "split", "level", "distance")



def summarize(rows: list[dict]) -> list[dict]:
    """Mean ± std over seeds per (method, protocol, split, level, distance), in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in KEY), []).append(r)
    out = []
    for key, rs in groups.items():
        s = dict(zip(KEY, key))
        s["n_seeds"] = len(rs)
        s["seeds"] = [r.get("seed") for r in rs]
        for m in METRICS:
            vals = [r[m] for r in rs if m in r and r[m] is not None and np.isfinite(r[m])]
            if vals:
                s[m] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "values": vals}
        cmcs = [r["cmc"] for r in rs if "cmc" in r]
        if cmcs:
            n = min(len(c) for c in cmcs)
            s["cmc"] = np.mean([c[:n] for c in cmcs], axis=0).tolist()
        s["n_probes"] = rs[0].get("n_probes")
        s["n_unmatched"] = rs[0].get("n_unmatched")
        if "confusion" in rs[0]:
            s["confusion"] = rs[0]["confusion"]  # first seed's (counts do not average meaningfully)
            s["classes"] = rs[0]["classes"]
        out.append(s)
    return out


def fmt(stat: dict | None, scale: float = 100.0) -> str:
    """``{'mean','std','values'}`` -> ``'74.6 ± 1.2'`` (``'74.6'`` for one value, ``'–'`` when absent)."""
    if not stat:
        return "–"
    if len(stat["values"]) == 1:
        return f"{scale * stat['mean']:.1f}"
    return f"{scale * stat['mean']:.1f} ± {scale * stat['std']:.1f}"


def _ordered(values):
    seen = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def markdown(summary: list[dict], title: str = "", meta: dict | None = None, distance: str = "euclidean") -> str:
    """Compact tables (one per protocol: methods x (split, level)) plus the full metric table."""
    lines = [f"# {title}" if title else "# Evaluation report", ""]
    if meta:
        for k, v in meta.items():
            lines.append(f"- {k}: `{v}`" if k == "command" else f"- {k}: {v}")
        lines.append("")
    for protocol, cell, label in (("P2", ("rank1", "mAP"), "Rank-1 / mAP (%)"),
                                  ("P1", ("rank1", "nAUC_roc"), "Rank-1 / nAUC_roc (%)")):
        rows = [s for s in summary if s["protocol"] == protocol and (protocol == "P1" or s["distance"] == distance)]
        if not rows:
            continue
        cols = _ordered((s["split"], s["level"]) for s in rows)
        methods = _ordered(s["method"] for s in rows)
        extra = f", {distance} distance" if protocol == "P2" else " (RN scores for CAGEs, kNN class scores for baselines)"
        lines += [f"## {protocol}: {label}{extra}", "",
                  "| Method | " + " | ".join(f"{sp} {lv}" for sp, lv in cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for meth in methods:
            cells = []
            for sp, lv in cols:
                s = next((x for x in rows if x["method"] == meth and x["split"] == sp and x["level"] == lv), None)
                cells.append(" / ".join(fmt(s.get(c)) for c in cell) if s else "–")
            lines.append(f"| {meth} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## All metrics (%)", "",
              "| Method | Protocol | Split | Level | Distance | seeds | probes (unmatched) | " + " | ".join(METRICS) + " |",
              "|---|---|---|---|---|---|---|" + "---|" * len(METRICS)]
    for s in summary:
        lines.append(f"| {s['method']} | {s['protocol']} | {s['split']} | {s['level']} | {s['distance']} | "
                     f"{s['n_seeds']} | {s['n_probes']} ({s['n_unmatched']}) | "
                     + " | ".join(fmt(s.get(m)) for m in METRICS) + " |")
    lines.append("")
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def plot_cmc(summary: list[dict], protocol: str, split: str, path: Path, distance: str = "euclidean") -> Path:
    """CMC curves of every method on one axis (window solid, sequence dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    rows = [s for s in summary if s["protocol"] == protocol and s["split"] == split and "cmc" in s
            and (protocol == "P1" or s["distance"] == distance)]
    colours = {m: f"C{i}" for i, m in enumerate(_ordered(s["method"] for s in rows))}
    for s in rows:
        cmc = 100 * np.asarray(s["cmc"])
        k = np.arange(1, len(cmc) + 1)
        ax.plot(k, cmc, ("-" if s["level"] == "window" else "--"), color=colours[s["method"]], marker=".",
                label=f"{s['method']} ({s['level']})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("rank k")
    ax.set_ylabel("identification rate CMC(k) (%)")
    ax.set_ylim(0, 101)
    what = "RN / kNN scores" if protocol == "P1" else f"{distance} distance"
    ax.set_title(f"{split}: {protocol} CMC, {what}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(s: dict, path: Path) -> Path:
    """The P1 confusion matrix (rows: true person, columns: predicted) of one summary row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = np.asarray(s["confusion"])
    classes = s["classes"]
    size = min(10.0, 3.0 + 0.35 * len(classes))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(conf, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    if len(classes) <= 30:
        ax.set_xticks(range(len(classes)), [str(c) for c in classes], fontsize=7, rotation=90)
        ax.set_yticks(range(len(classes)), [str(c) for c in classes], fontsize=7)
        for (i, j), v in np.ndenumerate(conf):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=6,
                        color="white" if v > conf.max() / 2 else "black")
    ax.set_xlabel("predicted person")
    ax.set_ylabel("true person")
    acc = np.trace(conf) / max(conf.sum(), 1)
    ax.set_title(f"{s['method']} – {s['split']} ({s['level']}), Rank-1 {100 * acc:.1f}%", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(out_dir: str | Path, rows: list[dict], meta: dict, title: str = "") -> dict[str, Path]:
    """Write ``report.json`` (meta, per-seed rows, summary), ``report.md`` and the PNGs into ``out_dir``."""
    out_dir = Path(out_dir)
    summary = summarize(rows)
    paths: dict[str, Path] = {}
    for protocol, split in _ordered((s["protocol"], s["split"]) for s in summary):
        p = plot_cmc(summary, protocol, split, out_dir / f"cmc_{protocol}_{_slug(split)}.png")
        paths[p.stem] = p
    for s in summary:
        if s["protocol"] == "P1" and s["level"] == "window" and "confusion" in s:
            p = plot_confusion(s, out_dir / f"confusion_{_slug(s['method'])}_{_slug(s['split'])}.png")
            paths[p.stem] = p
    slim = [{k: v for k, v in r.items() if k not in ("confusion",)} for r in rows]
    write_json(out_dir / "report.json", {"meta": meta, "summary": summary, "rows": slim,
                                         "plots": sorted(p.name for p in paths.values())})
    md = markdown(summary, title, meta)
    md += "\n## Plots\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in paths.values()) + "\n"
    write_text(out_dir / "report.md", md)
    paths["report.json"] = out_dir / "report.json"
    paths["report.md"] = out_dir / "report.md"
    return paths


def load_report(path: str | Path) -> dict:
    """``report.json`` of a run folder (or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise OfflineError(f"{path}: no report.json (run `cagereid evaluate ... --out DIR` first)")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise OfflineError(f"{path}: not a readable report ({exc})") from None
    if "summary" not in data:
        raise OfflineError(f"{path}: has no 'summary' (not written by cagereid evaluate)")
    return data


def compare(paths: list[str | Path], protocol: str | None = None, level: str | None = None,
            distance: str = "euclidean") -> str:
    """One Markdown table over several runs: a row per (run, method), a column per (protocol, split, level)."""
    entries = []
    for p in paths:
        data = load_report(p)
        run = Path(p).name if Path(p).is_dir() else Path(p).parent.name
        for s in data["summary"]:
            if s["protocol"] == "P2" and s["distance"] != distance:
                continue
            if (protocol and s["protocol"] != protocol.upper()) or (level and s["level"] != level):
                continue
            entries.append((run, s))
    if not entries:
        return "(no matching rows)\n"
    cols = _ordered((s["protocol"], s["split"], s["level"]) for _, s in entries)
    rowkeys = _ordered((run, s["method"]) for run, s in entries)
    lines = ["| Run | Method | " + " | ".join(f"{p} {sp} {lv}" for p, sp, lv in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for run, meth in rowkeys:
        cells = []
        for p, sp, lv in cols:
            s = next((x for r, x in entries if r == run and x["method"] == meth and x["protocol"] == p
                      and x["split"] == sp and x["level"] == lv), None)
            second = "mAP" if p == "P2" else "nAUC_roc"
            cells.append(f"{fmt(s.get('rank1'))} / {fmt(s.get(second))}" if s else "–")
        lines.append(f"| {run} | {meth} | " + " | ".join(cells) + " |")
    legend = (f"\nCells: Rank-1 / mAP (P2, {distance} distance) or Rank-1 / nAUC_roc (P1), percent, "
              "mean ± std over seeds.\n")
    return "\n".join(lines) + "\n" + legend
