"""The recognition network (RN, CAGE_SPEC §4-§5): CAGE rows of windows, RN training with epoch selection,
`fit_rn` (extract, train, write ``rn.pt`` + ``rn.json``), `load_rn`, and window scores."""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cages.encoder import ConfigError
from cages.features import CageExtractor, resolve_device
from cages.io import load_torch, save_torch, write_json
from cages.recognition import RecognitionNetwork, RNConfig, window_scores
from offline.datasets.base import DatasetError, WindowSet
from offline.training.common import JsonlLog, git_commit, progress_bar
from offline.training.config import TrainConfig
from offline.training.encoder import tail_split


def extract_features(extractor: CageExtractor, windows) -> torch.Tensor:
    """RN input rows of RAW windows ``(N, f, J, 3)`` (a `WindowSet` is accepted): ``(N, f, D_rn)`` float32.

    Faithful: the AP CAGE rows (768-D for rev_rec). Improved: AP rows + the window's z-scored bone lengths.
    """
    if isinstance(windows, WindowSet):
        windows = windows.windows
    return extractor.rn_rows(windows)


def rn_scores(rn: RecognitionNetwork, feats_ap: torch.Tensor, f: int) -> torch.Tensor:
    """``(N_windows, C)``: the mean of the ``f`` frame-level logit vectors of every window (CAGE_SPEC §5).

    ``feats_ap`` is ``(N, f, D)`` or ``(N·f, D)`` (rows of a window contiguous).
    """
    rn.eval()
    feats = torch.as_tensor(feats_ap).float()
    if feats.dim() == 3:
        feats = feats.reshape(-1, feats.shape[-1])
    dev = next(rn.parameters()).device
    with torch.no_grad():
        logits = torch.cat([rn(feats[i:i + 65536].to(dev)).cpu() for i in range(0, len(feats), 65536)]) \
            if len(feats) else torch.zeros(0, rn.cfg.n_classes)
    return window_scores(logits, f)


def _accuracy(rn, feats, labels, f) -> float:
    if len(labels) == 0:
        return float("nan")
    return float((rn_scores(rn, feats, f).argmax(1) == torch.as_tensor(labels)).float().mean())


def train_rn(train_feats, train_labels, cfg: TrainConfig, val=None, progress: bool = False,
             device: str = "cpu", log=None, n_classes: int | None = None) -> RecognitionNetwork:
    """Train the RN on frame-level rows ``train_feats (N, f, D)`` with window labels ``(N,)`` (class indices).

    ``val``: ``(feats, labels)`` or ``{name: (feats, labels)}`` scored every epoch by window accuracy (mean
    logits). With ``rn_select='probe'``/``'val'`` the epoch whose accuracy on the FIRST entry is ≥ the best so far
    is kept (the original keeps the best probe epoch, §10 Q8); ``'last'`` keeps the final epoch.
    The returned RN carries ``history`` (per-epoch accuracies) and ``selected_epoch``.
    """
    cfg = cfg.resolved()
    F = cfg.faithful
    feats = torch.as_tensor(train_feats).float()
    labels = torch.as_tensor(np.asarray(train_labels), dtype=torch.long)
    N, f, D = feats.shape
    C = int(n_classes or int(labels.max()) + 1)
    rows = feats.reshape(N * f, D)
    row_labels = labels.repeat_interleave(f)
    dev = torch.device(resolve_device(device))
    g = torch.Generator().manual_seed(cfg.seed + 1)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed + 2)
        rn = RecognitionNetwork(RNConfig(d_in=D, n_classes=C, init="normal" if F else "default",
                                         standardise=not F, dropout=cfg.rn_dropout))
    rn.set_statistics(rows)
    rn.to(dev)
    opt = (torch.optim.AdamW(rn.parameters(), lr=cfg.rn_lr, weight_decay=cfg.rn_weight_decay)
           if cfg.rn_weight_decay > 0 else torch.optim.Adam(rn.parameters(), lr=cfg.rn_lr))
    vals = {} if val is None else (val if isinstance(val, dict) else {"val": val})
    vals = {k: (torch.as_tensor(v[0]).float(), torch.as_tensor(np.asarray(v[1]), dtype=torch.long)) for k, v in vals.items()}
    B = cfg.rn_batch_size
    perm0 = torch.randperm(len(rows), generator=g)  # the original's one-off shuffle (§4)
    rows_s, lab_s = rows[perm0].to(dev), row_labels[perm0].to(dev)
    best, best_state, best_epoch, history = -1.0, None, 0, []
    with progress_bar(progress) as bar:
        tid = bar.add_task("RN", total=cfg.rn_epochs, info="")
        for epoch in range(cfg.rn_epochs):
            rn.train()
            if F:
                order = torch.arange(len(rows_s), device=dev)
                nb = max(len(order) // B, 1)  # last partial batch dropped (original)
            else:
                order = torch.randperm(len(rows_s), generator=g).to(dev)
                nb = math.ceil(len(order) / B)
            tot = 0.0
            for k in range(nb):
                bi = order[k * B:(k + 1) * B]
                loss = torch.nn.functional.cross_entropy(rn(rows_s[bi]), lab_s[bi])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot += float(loss.detach())
            # the selection set (first entry) every epoch; the others (probes) only at the end: they are
            # reported, never used for choosing, and scoring them every epoch would dominate the run time
            final = epoch == cfg.rn_epochs - 1
            accs = {name: _accuracy(rn, vf, vl, f) for j, (name, (vf, vl)) in enumerate(vals.items())
                    if j == 0 or final}
            rec = {"phase": "rn", "epoch": epoch + 1, "loss": tot / nb, **{f"acc_{k}": v for k, v in accs.items()}}
            history.append(rec)
            if log is not None:
                log(**rec)
            if accs and cfg.rn_select in ("probe", "val"):
                first = next(iter(accs.values()))
                if first >= best:
                    best, best_epoch = first, epoch + 1
                    best_state = {k: v.detach().clone() for k, v in rn.state_dict().items()}
            bar.update(tid, advance=1, info=f"loss {tot / nb:.4g} " + " ".join(f"{k} {v:.3f}" for k, v in accs.items()))
    rn.selected_epoch = cfg.rn_epochs
    if best_state is not None:
        rn.load_state_dict(best_state)
        rn.selected_epoch = best_epoch
    rn.history = history
    return rn.cpu().eval()



def class_index(train_pids: np.ndarray) -> dict[int, int]:
    """Class index = position of the id in the sorted training id list (train.py:3942-3950)."""
    return {int(p): i for i, p in enumerate(sorted(set(np.asarray(train_pids).tolist())))}


def _labels(ws: WindowSet, classes: dict[int, int], name: str) -> np.ndarray:
    unknown = sorted(set(ws.pids.tolist()) - set(classes))
    if unknown:
        raise DatasetError(f"{ws.dataset}/{name}: person id(s) {unknown[:5]} are not in the training split "
                           f"(closed-set identification needs the same identities, §10 Q21)")
    return np.array([classes[int(p)] for p in ws.pids], dtype=np.int64)


def fit_rn(extractor: CageExtractor, rn_train: WindowSet, cfg: TrainConfig, out: str | os.PathLike,
           probes: dict | None = None, progress: bool = True, device: str = "cpu", command: str | None = None) -> dict:
    """Extract CAGEs of ``rn_train`` (and ``probes``), train the RN, write ``rn.pt`` + ``rn.json``.

    Returns per probe split ``{"rank1", "rank1_last_epoch", "windows"}`` (window-level, mean logits) plus the
    selection used. Improved: the RN epoch is picked on a validation tail of the training windows; faithful:
    on the first probe set (the original's optimistic protocol), reported as such.
    """
    rcfg = cfg.resolved()
    out = Path(out)
    probes = probes or {}
    classes = class_index(rn_train.pids)
    y_train = _labels(rn_train, classes, "train")
    probe_labels = {k: _labels(v, classes, k) for k, v in probes.items()}
    t0 = time.time()
    feats_train = extract_features(extractor, rn_train)
    feats_probe = {k: extract_features(extractor, v) for k, v in probes.items()}
    t_feat = time.time() - t0
    vals: dict = {}
    if rcfg.rn_select == "val":
        tr, va = tail_split(rn_train, 0.15 if rcfg.val_frac <= 0 else rcfg.val_frac, rcfg.seed)
        rn_feats, rn_y = feats_train[tr], y_train[tr]
        vals["val"] = (feats_train[va], y_train[va])
    else:
        rn_feats, rn_y = feats_train, y_train
    vals.update({k: (feats_probe[k], probe_labels[k]) for k in probes})
    rn = train_rn(rn_feats, rn_y, rcfg, val=vals, progress=progress, device=device, log=JsonlLog(out / "log.jsonl"),
                  n_classes=len(classes))
    last = rn.history[-1] if rn.history else {}
    metrics = {k: {"rank1": _accuracy(rn, feats_probe[k], probe_labels[k], rcfg.f),
                   "rank1_last_epoch": last.get(f"acc_{k}"), "windows": int(probes[k].n)} for k in probes}
    selection = {"probe": "best epoch on the first probe set (original protocol, optimistic)",
                 "val": "best epoch on a validation tail carved from the training windows",
                 "last": "final epoch"}[rcfg.rn_select]
    save_torch(out / "rn.pt", rn.state_dict())
    write_json(out / "rn.json", {
        "rn": rn.cfg.to_dict(), "classes": sorted(classes), "dataset": rcfg.dataset, "f": rcfg.f,
        "mode": rcfg.mode, "input": "CageExtractor.rn_rows (offline.training.rn.extract_features)",
        "selection": selection, "selected_epoch": rn.selected_epoch, "epochs": rcfg.rn_epochs,
        "metrics": metrics, "encoder_fingerprint": extractor.fingerprint, "git_commit": git_commit(),
        "command": command or " ".join(sys.argv), "seed": rcfg.seed, "feature_seconds": t_feat,
    })
    return {"metrics": metrics, "selection": selection, "selected_epoch": rn.selected_epoch, "feature_seconds": t_feat}


def load_rn(run_dir: str | os.PathLike, device: str = "cpu") -> tuple[RecognitionNetwork, list[int]]:
    """``(rn, classes)`` from ``run_dir/rn.pt`` + ``rn.json``; ``classes[i]`` is the person id of logit ``i``.

    Its input rows are `extract_features` (= ``CageExtractor.rn_rows``) of the run's extractor.
    """
    run_dir = Path(run_dir)
    pt, js = run_dir / "rn.pt", run_dir / "rn.json"
    if not pt.is_file() or not js.is_file():
        raise ConfigError(f"{run_dir}: no recognition network (need rn.pt and rn.json; run cagereid train)")
    meta = json.loads(js.read_text())
    rn = RecognitionNetwork(RNConfig(**meta["rn"]))
    rn.load_state_dict(load_torch(pt))
    return rn.to(resolve_device(device)).eval(), [int(c) for c in meta["classes"]]

