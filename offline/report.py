"""Reports of evaluation runs: ``report.json``, ``report.md`` and PNG plots, and a multi-run comparison.

Input: the flat rows of `offline.evaluate` (one per method x protocol x split x level x distance x seed).
`summarize` folds the seeds into mean ± std (a method evaluated once, e.g. a deterministic baseline, shows
a plain number). Plots: `offline.plots` (CMC with the spread over seeds, open-set score distributions with the
live acceptance score, per-seed confusion matrices normalised per row, embedding maps, training curves).
Percentages everywhere in the Markdown; fractions in the JSON.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from cages.io import write_json, write_text
from offline.errors import OfflineError
from offline.plots import ordered as _ordered

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
            s["cmc_min"] = np.min([c[:n] for c in cmcs], axis=0).tolist()
            s["cmc_max"] = np.max([c[:n] for c in cmcs], axis=0).tolist()
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


def write_report(out_dir: str | Path, rows: list[dict], meta: dict, title: str = "",
                 training_runs: list[str | Path] = ()) -> dict[str, Path]:
    """Write ``report.json`` (meta, per-seed rows, summary), ``report.md`` and the PNGs into ``out_dir``.

    Plots (`offline.plots`): a CMC figure per protocol and split (mean over seeds, band over seeds); per method
    and split the open-set score distributions with the live acceptance score and a PCA map of the probe
    embeddings (first seed); every P1 window-level confusion matrix, per seed, normalised per row; the loss
    curves of each training run in ``training_runs`` that has a ``log.jsonl``.
    """
    from offline import plots

    out_dir = Path(out_dir)
    summary = summarize(rows)
    paths: dict[str, Path] = {}
    notes: list[str] = []
    for protocol, split in _ordered((s["protocol"], s["split"]) for s in summary):
        p = plots.plot_cmc(summary, protocol, split, out_dir / f"cmc_{protocol}_{_slug(split)}.png")
        paths[p.stem] = p
    done: set[tuple] = set()
    for r in rows:
        key = (r["method"], r["split"])
        if r["protocol"] != "P2" or r["level"] != "window" or key in done or "open_set" not in r:
            continue
        done.add(key)
        seed = "" if r.get("seed") is None else f", seed {r['seed']}"
        os_ = r["open_set"]
        if os_["genuine"] or os_["impostor"]:
            p = plots.plot_scores(os_, f"{r['method']} – {r['split']}{seed}: live open-set scores\n(tracks pooled over "
                                       f"{os_['pool_windows']} windows, {os_['reduce']}, {os_['metric']})",
                                  out_dir / f"scores_{_slug(r['method'])}_{_slug(r['split'])}.png")
            paths[p.stem] = p
            rates = plots.open_set_rates(os_)
            if rates:
                notes.append(f"| {r['method']} | {r['split']} | {os_['accept_score']:.4g} | "
                             f"{100 * rates['genuine_accepted']:.1f} | {100 * rates['impostor_rejected']:.1f} |")
        if len(r.get("embedding_map", {}).get("xy", [])) >= 2:
            p = plots.plot_embedding(r["embedding_map"], f"{r['method']} – {r['split']}{seed}: probe embeddings (PCA)",
                                     out_dir / f"embedding_{_slug(r['method'])}_{_slug(r['split'])}.png")
            paths[p.stem] = p
    for r in rows:
        if r["protocol"] == "P1" and r["level"] == "window" and "confusion" in r:
            seed = "" if r.get("seed") is None else f"_seed{r['seed']}"
            p = plots.plot_confusion(r, out_dir / f"confusion_{_slug(r['method'])}_{_slug(r['split'])}{seed}.png")
            paths[p.stem] = p
    for run in training_runs:
        if (Path(run) / "log.jsonl").is_file():
            try:
                p = plots.plot_training(run, out_dir / f"training_{_slug(Path(run).name)}.png", title=str(run))
            except OfflineError:  # a log without epochs yet
                continue
            paths[p.stem] = p
    slim = [{k: v for k, v in r.items() if k not in ("confusion", "open_set", "embedding_map")} for r in rows]
    write_json(out_dir / "report.json", {"meta": meta, "summary": summary, "rows": slim,
                                         "plots": sorted(p.name for p in paths.values())})
    md = markdown(summary, title, meta)
    if notes:
        md += ("\n## Open-set threshold (live decision replayed on the probes)\n\n"
               "The acceptance score `cagereid live` calibrates on this gallery (config `accept_score: null`), and "
               "what it does to the probe walks: genuine = the walker's own person, impostor = the best other "
               "person. See the scores_* plots to choose another.\n\n"
               "| Method | Split | accept_score | genuine accepted (%) | impostors rejected (%) |\n|---|---|---|---|---|\n"
               + "\n".join(notes) + "\n")
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
