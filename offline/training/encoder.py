"""Self-supervised training of the CAGE encoders (CAGE_SPEC §2-§3): batches, losses, one epoch, the
validation loss, and `train_encoder`, which writes ``encoder.pt`` + ``encoder.json`` (+ ``encoder_state.pt`` to
resume, ``log.jsonl``).

* `EncoderData`: the normalised training windows on the device and what a batch needs.
* `batches(data, idx, cfg, rng)`: one epoch's index batches (faithful: contiguous blocks; improved: shuffled
  anchors + one sampled positive partner each).
* `model_losses(model, data, idx, cfg, profiles)`: ``{"rec", "la", "con"}`` of one batch.
* `train_one_epoch(...)`, `evaluate_loss(...)`, `train_encoder(...)`.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cages.encoder import CageEncoder, ConfigError, EncoderConfig, key, la_gaussian
from cages.features import FeatureConfig, bone_lengths, normalise_windows, resolve_device
from cages.io import load_torch, save_torch, write_json
from cages.loss import adjacent_ntxent, add_l2_grad_, la_loss, multi_positive_ntxent, positive_mask, rec_loss
from cages.pretext import pretext_pair
from offline.datasets.base import DatasetError, WindowSet
from offline.training.common import JsonlLog, git_commit, progress_bar, seed_everything
from offline.training.config import TrainConfig
from offline.training.distributed import Dist, from_env, local_device


def feature_config(train: WindowSet, cfg: TrainConfig) -> FeatureConfig:
    """Normalisation and bone-length cue for this run; bone statistics from the training windows."""
    centre: list[int] = []
    bones: list[list[int]] = []
    layout = None
    try:
        from pose.layouts import get_layout

        layout = get_layout(train.layout or cfg.layout)
    except Exception:  # noqa: BLE001 - unknown layout: no bones, joint 0 as root
        layout = None
    if cfg.centre == "root":
        centre = list(layout.root_joints) if layout is not None else [0]
    elif cfg.centre == "joint0":
        centre = [0]
    fc = FeatureConfig(centre=centre, bone_weight=float(cfg.bone_weight), readout=cfg.readout)
    if cfg.facing:
        names = ("HipLeft", "HipRight", "ShoulderLeft", "ShoulderRight")
        if layout is None or not all(n in layout.joints for n in names) or layout.J != train.J:
            raise ConfigError(f"facing: the layout {train.layout or cfg.layout!r} has no named hips and shoulders")
        fc.facing = [layout.index(n) for n in names]
    if cfg.bone_weight > 0 and layout is not None and layout.J == train.J:
        bones = [[int(i), int(j)] for i, j in layout.bones]
        bl = bone_lengths(normalise_windows(train.windows, centre, fc.facing), bones)
        fc.bones = bones
        fc.bone_mean = bl.mean(0).tolist()
        fc.bone_std = bl.std(0).clamp_min(1e-4).tolist()
    else:
        fc.bone_weight = 0.0
    return fc


def tail_split(ws: WindowSet, frac: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)``: the last ``frac`` of every recording's frames is validation; training windows
    that overlap it are dropped (no frame is in both). Without recording metadata: a seeded random ``frac``.
    """
    n = ws.n
    if frac <= 0 or n == 0:
        return np.arange(n), np.zeros(0, np.int64)
    if (ws.recording < 0).all() or (ws.start < 0).all():
        perm = np.random.default_rng(seed).permutation(n)
        k = max(1, int(round(frac * n)))
        return np.sort(perm[k:]), np.sort(perm[:k])
    tr, va = [], []
    for rec in np.unique(ws.recording):
        idx = np.flatnonzero(ws.recording == rec)
        s = ws.start[idx]
        lo, hi = s.min(), s.max() + ws.f
        cut = hi - frac * (hi - lo)
        va.append(idx[s >= cut])
        tr.append(idx[s + ws.f <= cut])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(va))


def _positive_index(recording: np.ndarray, start: np.ndarray, max_shift: int):
    """For every window, the range ``[lo, hi)`` (in the order ``order``) of windows of the same recording whose
    start is within ``max_shift`` frames (itself included)."""
    order = np.lexsort((start, recording))
    rec_s, st_s = recording[order], start[order]
    big = int(st_s.max() - st_s.min() + 2 * max_shift + 10) if len(st_s) else 1
    k = rec_s.astype(np.int64) * big + (st_s - st_s.min())
    lo = np.searchsorted(k, k - max_shift, side="left")
    hi = np.searchsorted(k, k + max_shift, side="right")
    pos_in_order = np.empty_like(order)
    pos_in_order[order] = np.arange(len(order))
    return order, lo[pos_in_order], hi[pos_in_order], pos_in_order


def sample_partners(meta, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One positive partner per anchor in ``idx`` (same recording, |Δstart| ≤ max_shift, another window when
    one exists), vectorised."""
    order, lo, hi, pos = meta
    lo_i, hi_i, self_i = lo[idx], hi[idx], pos[idx]
    width = hi_i - lo_i - 1  # candidates other than itself
    r = lo_i + (rng.random(len(idx)) * np.maximum(width, 1)).astype(np.int64)
    r = np.where(r >= self_i, r + 1, r)
    r = np.where(width > 0, r, self_i)
    return order[r]


def next_window_index(ws: WindowSet, faithful: bool) -> np.ndarray:
    """Target index of the prediction pretext: the next sample in file order (faithful, last = itself), or the
    window of the same recording starting ``f`` frames later (improved; itself when there is none)."""
    n = ws.n
    if faithful or (ws.recording < 0).all():
        return np.minimum(np.arange(n) + 1, n - 1)
    lookup = {(int(r), int(s)): i for i, (r, s) in enumerate(zip(ws.recording, ws.start))}
    return np.array([lookup.get((int(r), int(s) + ws.f), i) for i, (r, s) in enumerate(zip(ws.recording, ws.start))])



class EncoderData:
    """Normalised training windows on the device plus everything a batch needs (targets, permutations)."""

    def __init__(self, ws: WindowSet, cfg: TrainConfig, ecfg: EncoderConfig, fc: FeatureConfig, device, seed: int):
        self.X = normalise_windows(ws.windows, fc.centre, fc.facing).to(device)  # (N, f, J, 3)
        self.n = len(self.X)
        rec, start = ws.recording.copy(), ws.start.copy()
        if (rec < 0).all() or (start < 0).all():
            # No metadata: file order stands in for time (consecutive windows of one long "recording").
            rec = np.zeros(self.n, np.int64)
            start = np.arange(self.n, dtype=np.int64) * ws.f
        self.recording = torch.as_tensor(rec, device=device)
        self.start = torch.as_tensor(start, device=device)
        self._rec_np, self._start_np, self._max_shift = rec, start, cfg.max_shift
        self._partner_index: dict = {}
        self.next_idx = torch.as_tensor(next_window_index(ws, cfg.faithful), device=device)
        g = torch.Generator().manual_seed(seed + 17)
        # sorting pretext: one permutation per window and axis, drawn once (CAGE_SPEC §2.4, §10 Q17)
        self.perm = (torch.stack([torch.stack([torch.randperm(ws.f, generator=g) for _ in range(self.n)])
                                  for _ in ecfg.axes]).to(device) if "sorting" in ecfg.tasks and self.n else None)



def _partners(data: "EncoderData", pool: np.ndarray, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One positive partner per anchor, drawn from ``pool`` only (training windows never pair with held-out ones)."""
    k = (len(pool), int(pool[0]) if len(pool) else -1, int(pool[-1]) if len(pool) else -1)
    if k not in data._partner_index:
        local = np.full(data.n, -1, dtype=np.int64)
        local[pool] = np.arange(len(pool))
        meta = _positive_index(data._rec_np[pool], data._start_np[pool], data._max_shift)
        data._partner_index[k] = (local, meta)
    local, meta = data._partner_index[k]
    return pool[sample_partners(meta, local[anchors], rng)]


def model_losses(model: CageEncoder, data: EncoderData, idx: torch.Tensor, cfg: TrainConfig,
                  profiles: dict, dist: Dist | None = None) -> dict[str, torch.Tensor]:
    """``{"rec", "la", "con"}`` of the batch ``idx``. With ``dist`` (several processes) this process runs the
    model on its share of the batch only and returns its share of each loss (they sum to the batch's losses
    across the processes; see `offline.training.distributed`)."""
    ecfg = model.cfg
    n = len(idx)
    local = idx if dist is None else idx[dist.part(n)]
    reduction = cfg.reduction if dist is None else "sum"  # distributed: summed here, divided by n below
    xb = data.X[local]  # (B, f, J, 3)
    zero = xb.new_zeros(())
    rec, la, con = zero, zero, zero
    if cfg.positives == "metadata":
        pos = positive_mask(data.recording[idx], data.start[idx], cfg.max_shift)
    for task in ecfg.tasks:
        for ai, a in enumerate(ecfg.axes):
            inp, tgt = pretext_pair(
                task, xb[..., ai],
                next_x=data.X[data.next_idx[local]][..., ai] if task == "prediction" else None,
                perm=data.perm[ai][local] if task == "sorting" else None)
            m = model.models[key(task, a)]
            A, C, y_hat = m(inp, model.decoder_inputs(tgt))
            rec = rec + rec_loss(y_hat, tgt, reduction)
            if ecfg.task_attention(task) == "LA":
                la = la + la_loss(A, profiles[task].to(A.dtype), reduction)
            z = m.project(C).float()
            if dist is not None:
                z = dist.gather(z, n)  # the whole batch: negatives (and neighbours) from every process
            c = adjacent_ntxent(z, cfg.t) if cfg.positives == "adjacent" else multi_positive_ntxent(z, pos, cfg.t)
            con = con + (c if dist is None else c / dist.world)
    if dist is not None and cfg.reduction == "mean":
        rec, la = rec / n, la / n
    return {"rec": rec.float(), "la": la.float(), "con": con.float()}


def batches(data: EncoderData, train_idx: np.ndarray, cfg: TrainConfig, rng: np.random.Generator):
    """Index batches for one epoch. adjacent: contiguous blocks in file order, last partial block dropped
    (original). metadata: shuffled anchors + one sampled positive partner each."""
    B = cfg.batch_size
    if cfg.positives == "adjacent":
        nb = len(train_idx) // B
        if nb == 0 and len(train_idx) >= 2:  # tiny data sets: one smaller block instead of nothing
            return [train_idx]
        return [train_idx[k * B:(k + 1) * B] for k in range(nb)]
    anchors = rng.permutation(train_idx)
    half = max(1, B // 2)
    out = []
    for k in range(0, len(anchors), half):
        a = anchors[k:k + half]
        if len(a) < 2:
            continue
        out.append(np.concatenate([a, _partners(data, train_idx, a, rng)]))
    return out


def train_one_epoch(model: CageEncoder, opt: torch.optim.Optimizer, data: EncoderData, train_idx: np.ndarray,
                    cfg: TrainConfig, profiles: dict, seed: int, epoch: int, use_amp: bool = False,
                    on_batch=None, dist: Dist | None = None) -> tuple[dict[str, float], int, int]:
    """One epoch of encoder training on the windows ``train_idx`` (``cfg`` resolved). Batches and shuffles are
    seeded by ``(seed, epoch)``, so a resumed run repeats them. Returns the mean of ``loss``/``rec``/``la``/
    ``con``/``l2`` over the batches, the number of batches and of windows; ``on_batch(done, windows_per_s,
    mean_loss)`` is called after each batch (progress). ``dist``: see `training_step`."""
    dev = data.X.device
    rng = np.random.default_rng([seed, epoch])
    torch.manual_seed(seed * 100_003 + epoch)
    model.train()
    sums = {"loss": 0.0, "rec": 0.0, "la": 0.0, "con": 0.0, "l2": 0.0}
    n_batches, n_windows, t0 = 0, 0, time.time()
    for b in batches(data, train_idx, cfg, rng):
        loss, parts = training_step(model, opt, data, torch.as_tensor(b, device=dev), cfg, profiles, use_amp, dist)
        for k, v in (("loss", loss), *parts.items()):
            sums[k] += float(v)
        n_batches += 1
        n_windows += len(b)
        if on_batch is not None:
            on_batch(n_batches, n_windows / max(time.time() - t0, 1e-9), sums["loss"] / n_batches)
    return {k: v / max(n_batches, 1) for k, v in sums.items()}, n_batches, n_windows


def training_step(model: CageEncoder, opt: torch.optim.Optimizer, data: EncoderData, idx: torch.Tensor,
                  cfg: TrainConfig, profiles: dict, use_amp: bool = False,
                  dist: Dist | None = None) -> tuple[torch.Tensor, dict]:
    """One optimiser step on the batch ``idx``: weighted losses (+ the explicit L2 term of faithful mode),
    backward, element-wise gradient clipping, step. Returns the detached loss and its parts.

    ``dist`` (several processes, `offline.training.distributed`): this process computes its share of the batch,
    the gradients are summed across the processes before clipping, and the returned values are the batch's."""
    dev = data.X.device
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
        parts = model_losses(model, data, idx, cfg, profiles, dist)
    loss = cfg.rec_weight * parts["rec"] + cfg.la_weight * parts["la"] + cfg.con_weight * parts["con"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if dist is not None:
        dist.sum_([p.grad for p in model.parameters() if p.grad is not None])
        shares = torch.stack([parts["rec"], parts["la"], parts["con"]]).detach()
        dist.sum_([shares])
        parts = dict(zip(("rec", "la", "con"), shares))
        loss = cfg.rec_weight * shares[0] + cfg.la_weight * shares[1] + cfg.con_weight * shares[2]
    # the explicit L2 term (faithful mode): its gradient added once, after the processes' gradients are summed
    l2 = add_l2_grad_(model.parameters(), cfg.l2) if cfg.l2 > 0 else loss.new_zeros(())
    loss = loss + l2
    if cfg.clip > 0:
        torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip)
    opt.step()
    return loss.detach(), {k: v.detach() for k, v in (*parts.items(), ("l2", l2))}


def evaluate_loss(model: CageEncoder, data: EncoderData, idx: np.ndarray, cfg: TrainConfig, profiles: dict,
                  seed: int, use_amp: bool = False) -> float:
    """The weighted training loss on the windows ``idx`` (the validation tail), same batches every call;
    NaN with fewer than 2 windows."""
    if len(idx) < 2:
        return float("nan")
    dev = data.X.device
    model.eval()
    rng = np.random.default_rng([seed, 10_000])  # same val batches every epoch
    tot, n = 0.0, 0
    with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
        for b in batches(data, idx, cfg, rng):
            parts = model_losses(model, data, torch.as_tensor(b, device=dev), cfg, profiles)
            tot += float(cfg.rec_weight * parts["rec"] + cfg.la_weight * parts["la"] + cfg.con_weight * parts["con"])
            n += 1
    model.train()
    return tot / max(n, 1)


def new_optimizer(model: CageEncoder, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (faithful, constant lr) or AdamW with decoupled weight decay (improved), as ``cfg`` (resolved) says."""
    opt_cls = torch.optim.AdamW if cfg.weight_decay > 0 else torch.optim.Adam
    opt_kw = {"weight_decay": cfg.weight_decay} if cfg.weight_decay > 0 else {}
    # fused: the whole update of every parameter in one kernel (same Adam arithmetic; issue #16: ~6 % of a
    # faithful CPU step saved against the per-parameter loop PyTorch uses by default on CPU)
    return opt_cls(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, fused=True, **opt_kw)


def la_profiles(ecfg: EncoderConfig, f: int, device) -> dict:
    """The LA loss's Gaussian target profile of every pretext task."""
    return {t: la_gaussian(f, ecfg.la_profile_centre(t), device=device) for t in ecfg.tasks}


def load_initial_weights(model: CageEncoder, init: str | os.PathLike, layout: str) -> None:
    """Copy the encoder weights of the model folder ``init`` into ``model`` (``train --init``); a folder of
    another architecture, layout or window length is a one-line `ConfigError`."""
    folder = Path(init)
    pt, js = folder / "encoder.pt", folder / "encoder.json"
    if not pt.is_file() or not js.is_file():
        raise ConfigError(f"--init {folder}: not a model folder (need encoder.pt and encoder.json)")
    try:
        meta = json.loads(js.read_text())
        theirs = EncoderConfig.from_dict(meta["encoder"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--init {js}: unreadable model metadata ({exc})") from None
    ours = model.cfg
    diff = [k for k in ("J", "f", "hidden", "model", "attention", "dummy_copies")
            if getattr(theirs, k) != getattr(ours, k)]
    if meta.get("layout") not in (None, layout):
        diff.append(f"layout {meta.get('layout')} != {layout}")
    if diff:
        raise ConfigError(f"--init {folder}: another model shape ({', '.join(diff)}); train from scratch or use a "
                          "model of the same layout, window length and width")
    try:
        state = load_torch(pt, map_location=next(model.parameters()).device)
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file, whatever torch raises for it
        raise ConfigError(f"--init {pt}: cannot load these weights ({str(exc).splitlines()[0]})") from None


def train_encoder(train: WindowSet, cfg: TrainConfig, out_dir: str | os.PathLike, seed: int | None = None,
                  device: str = "auto", progress: bool = True, resume: bool = False,
                  command: str | None = None, init: str | os.PathLike | None = None) -> Path:
    """Train the (task, axis) encoder models without labels on ``train``; write ``encoder.pt`` + ``encoder.json``.

    Faithful: contiguous unshuffled batches, adjacent positives, summed losses + L2 0.02, final checkpoint.
    Improved: shuffled anchor/positive batches from recording metadata, mean losses, validation tail of each
    recording for best-epoch selection. ``init``: a model folder (``encoder.pt`` + ``encoder.json``) whose weights
    the training starts from instead of random ones (same architecture, layout and window length).
    Returns the path of ``encoder.pt``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the processes share every batch (`offline.training.distributed`);
    only rank 0 writes files and shows progress.
    """
    cfg = cfg.resolved()
    seed = cfg.seed if seed is None else int(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = local_device(torch.device(resolve_device(device if device != "auto" else cfg.device)))
    dist = from_env(dev)
    main = dist is None or dist.main
    progress = progress and main
    seed_everything(seed, cfg.deterministic)
    if train.n < 2:
        raise DatasetError(f"{train.dataset}/{train.split}: need at least 2 training windows, got {train.n}")
    if train.f != cfg.f:
        raise DatasetError(f"{train.dataset}/{train.split}: windows have f={train.f}, config says f={cfg.f}")

    ecfg = cfg.encoder_config(train.J)
    fc = feature_config(train, cfg)
    ws = train
    if cfg.encoder_subset:  # BIWI: first N − ⌈N/3⌉ windows only (train.py:371, §10 Q9)
        ws = train.subset(np.arange(train.n - math.ceil(train.n / 3)))
    tr_idx, va_idx = tail_split(ws, cfg.val_frac, seed)
    if len(tr_idx) < 2:
        tr_idx, va_idx = np.arange(ws.n), np.zeros(0, np.int64)
    data = EncoderData(ws, cfg, ecfg, fc, dev, seed)
    model = CageEncoder(ecfg).to(dev)
    if init is not None:
        load_initial_weights(model, init, train.layout or cfg.layout)
    if dist is not None:  # same seed (or --init), same weights; made certain
        dist.broadcast_([p.data for p in model.parameters()])
    profiles = la_profiles(ecfg, cfg.f, dev)
    opt = new_optimizer(model, cfg)
    use_amp = cfg.amp and dev.type == "cuda"
    log = JsonlLog(out / "log.jsonl") if main else (lambda **rec: None)

    state_path = out / "encoder_state.pt"
    start_epoch, best, best_epoch, best_state = 0, float("inf"), -1, None
    # the epoch count may grow on --resume (train longer); anything else must be the same run
    cfg_json = json.dumps({k: v for k, v in cfg.to_dict().items()
                           if k not in ("epochs", "device") and not k.startswith("rn_")}, sort_keys=True)
    if resume and state_path.is_file():
        st = load_torch(state_path, map_location=dev)
        if st.get("config") != cfg_json:
            raise ConfigError(f"{state_path}: saved for a different configuration; drop --resume or use another --out")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optim"])
        start_epoch, best, best_epoch = int(st["epoch"]) + 1, float(st["best"]), int(st["best_epoch"])
        best_state = st.get("best_state")

    t_start = time.time()
    history = []
    with progress_bar(progress) as bar:
        task_id = bar.add_task("encoder", total=cfg.epochs, completed=start_epoch, info="")
        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.time()

            def show(done: int, wps: float, loss: float, epoch=epoch) -> None:
                bar.update(task_id, info=f"epoch {epoch + 1} loss {loss:.4g} {wps:.0f} win/s")

            mean, n_batches, n_windows = train_one_epoch(model, opt, data, tr_idx, cfg, profiles, seed, epoch,
                                                         use_amp, on_batch=show, dist=dist)
            val = evaluate_loss(model, data, va_idx, cfg, profiles, seed, use_amp)
            rec = {"phase": "encoder", "epoch": epoch + 1, **mean, "val_loss": val, "batches": n_batches,
                   "windows_per_s": n_windows / max(time.time() - t0, 1e-9), "seconds": time.time() - t0}
            history.append(rec)
            log(**rec)
            if not math.isnan(val) and val < best:
                best, best_epoch = val, epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            bar.update(task_id, advance=1, info=f"epoch {epoch + 1} loss {mean['loss']:.4g} val {val:.4g} "
                                               f"{rec['windows_per_s']:.0f} win/s")
            if main:
                save_torch(state_path, {"model": model.state_dict(), "optim": opt.state_dict(), "epoch": epoch,
                                        "best": best, "best_epoch": best_epoch, "best_state": best_state,
                                        "config": cfg_json})

    select = "final epoch"
    if best_state is not None and not cfg.faithful:
        model.load_state_dict(best_state)
        select = f"best validation loss (epoch {best_epoch})"
    enc_path = out / "encoder.pt"
    if not main:
        dist.barrier()  # rank 0 writes the files
        return enc_path
    save_torch(enc_path, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    last = history[-1] if history else {}
    write_json(out / "encoder.json", {
        "encoder": ecfg.to_dict(), "features": fc.to_dict(), "layout": train.layout or cfg.layout,
        "dataset": cfg.dataset, "f": cfg.f, "J": train.J, "mode": cfg.mode, "train_config": cfg.to_dict(),
        "normalisation": {"centre_joints": fc.centre, "scale": None},
        "seed": seed, "git_commit": git_commit(), "command": command or " ".join(sys.argv),
        "n_parameters": model.n_parameters(), "train_windows": int(len(tr_idx)), "val_windows": int(len(va_idx)),
        "checkpoint": select, "epochs": cfg.epochs,
        "metrics": {"final_loss": last.get("loss"), "final_rec": last.get("rec"), "final_con": last.get("con"),
                    "first_loss": history[0]["loss"] if history else None,
                    "best_val_loss": None if math.isinf(best) else best, "best_epoch": best_epoch,
                    "seconds": time.time() - t_start},
    })
    if dist is not None:
        dist.barrier()
    return enc_path


