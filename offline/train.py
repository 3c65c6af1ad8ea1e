"""Self-supervised training of the CAGE encoders, CAGE extraction, and the recognition network (RN).

Library functions (the evaluation code calls them) and the orchestration behind ``cagereid train``:

* `TrainConfig`: every training choice, with the two modes ``faithful`` (the original code, CAGE_SPEC §2-§5 and
  §10 "F") and ``improved`` (default; defects fixed, see ``docs/model.md``). `TrainConfig.resolved()` fills the
  mode/dataset-dependent defaults.
* `train_encoder(train, cfg, out_dir, seed, device, progress)` -> path of ``encoder.pt`` (+ ``encoder.json``).
* `extract_features(extractor, windows)` -> RN input rows ``(N, f, D)``.
* `train_rn(train_feats, train_labels, cfg, val)` -> `RecognitionNetwork` (with ``.history``, ``.selected_epoch``).
* `rn_scores(rn, feats_ap, f)` -> ``(N_windows, C)`` mean of the ``f`` frame-level logits per window (§5).
* `run_training(cfg, data_root, out, train_flag, ...)` -> dict of metrics: the whole ``cagereid train`` job.

Output folder: ``encoder.pt``/``encoder.json``, ``rn.pt``/``rn.json``, ``log.jsonl`` (one JSON object per
epoch and phase), ``encoder_state.pt``/``rn_state.pt`` (resume state), ``summary.json``.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from cages.encoder import CageEncoder, ConfigError, EncoderConfig, config_from_dict, key, la_gaussian
from cages.features import CageExtractor, FeatureConfig, bone_lengths, normalise_windows, resolve_device
from cages.io import load_torch, save_torch, write_json
from cages.loss import adjacent_ntxent, l2_penalty, la_loss, multi_positive_ntxent, positive_mask, rec_loss
from cages.recognition import RecognitionNetwork, RNConfig, window_scores
from offline.datasets.base import DatasetError, WindowSet

DATASETS = ("BIWI", "IAS", "KGBD", "KS20", "CASIA_B", "UCALGARY")
#: Original per-dataset settings: encoder epochs, RN epochs, temperature (CAGE_SPEC §3, §5, §2.6).
# UCALGARY is ours (not in the paper): 8 encoder epochs, see docs/model.md.
ENCODER_EPOCHS = {"BIWI": 400, "IAS": 400, "KS20": 400, "KGBD": 150, "CASIA_B": 100, "UCALGARY": 8}
RN_EPOCHS = {"BIWI": 300, "IAS": 300, "KGBD": 200, "KS20": 800, "CASIA_B": 1000, "UCALGARY": 300}
TEMPERATURE = {"BIWI": 0.1, "IAS": 0.1, "KS20": 0.1, "KGBD": 0.5, "CASIA_B": 0.15, "UCALGARY": 0.1}
LAYOUT = {"BIWI": "kinect_v1", "IAS": "kinect_v1", "KGBD": "kinect_v1", "KS20": "kinect_v2",
          "CASIA_B": "casia14", "UCALGARY": "ucalgary18"}


# --------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Training choices. ``None`` = "the default of this mode/dataset" (see `resolved`)."""

    dataset: str = "BIWI"  # BIWI | IAS | KGBD | KS20 | CASIA_B | UCALGARY
    f: int = 6  # window length (`--length`)
    view: int | None = None  # KS20 cross-view split 0..4 / CASIA_B view 0..10
    mode: str = "improved"  # improved | faithful
    model: str = "rev_rec"  # rev_rec | prediction | sorting | rev_rec_plus
    attention: str = "LA"  # LA | BA
    t: float | None = None  # temperature; None = dataset value (0.1; KGBD 0.5; CASIA_B 0.15). Faithful forces it
    decoder_input: str = "zero"  # zero (original) | teacher
    epochs: int | None = None  # encoder epochs; None = original (BIWI/IAS/KS20 400, KGBD 150, CASIA_B 100)
    batch_size: int = 128
    lr: float = 5e-4  # Adam, constant
    clip: float = 5.0  # element-wise gradient clipping to [-clip, clip]
    l2: float | None = None  # λ of the explicit L2 term Σ½‖θ‖²; None: 0.02 faithful, 0 improved
    weight_decay: float | None = None  # decoupled (AdamW) weight decay; None: 0 faithful, 1e-4 improved
    positives: str | None = None  # adjacent (file neighbours, no shuffle) | metadata (same recording, |Δstart|≤max_shift)
    max_shift: int = 30  # improved positives: start frames at most this far apart (about one gait cycle)
    reduction: str | None = None  # loss reduction over the batch: sum (faithful) | mean (improved)
    rec_weight: float = 1.0  # weights of L_rec, L_LA, L_C (all 1 in the original)
    la_weight: float = 1.0
    con_weight: float = 1.0
    val_frac: float | None = None  # tail of each recording held out for selection; None: 0 faithful, 0.15 improved
    centre: str | None = None  # none | root (layout hip centre) | joint0; None: faithful none (CASIA_B joint0), improved root
    bone_weight: float | None = None  # bone-length cue in embed (and RN rows); None: 0 faithful, 0.5 improved
    readout: str | None = None  # what the retrieval embedding reads: ap | head; None: ap faithful, head improved
    encoder_subset: bool | None = None  # BIWI: encoder sees the first N−⌈N/3⌉ windows only; None: faithful True
    rn_epochs: int | None = None  # None = original (BIWI/IAS 300, KGBD 200, KS20 800, CASIA_B 1000)
    rn_batch_size: int = 128
    rn_lr: float = 5e-4
    rn_weight_decay: float | None = None  # None: 0 faithful, 1e-3 improved (AdamW)
    rn_dropout: float | None = None  # None: 0 faithful, 0.2 improved
    rn_select: str | None = None  # probe (original: best epoch on the probe set) | val | last
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on CPU)
    hidden: int = 256  # LSTM/attention width (256 in the original; smaller only for quick tests)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset must be one of {', '.join(DATASETS)} (got {self.dataset!r})")
        if self.mode not in ("faithful", "improved"):
            raise ConfigError(f"mode must be faithful or improved (got {self.mode!r})")
        if self.positives not in (None, "adjacent", "metadata"):
            raise ConfigError(f"positives must be adjacent or metadata (got {self.positives!r})")
        if self.rn_select not in (None, "probe", "val", "last"):
            raise ConfigError(f"rn_select must be probe, val or last (got {self.rn_select!r})")
        if self.readout not in (None, "ap", "head"):
            raise ConfigError(f"readout must be ap or head (got {self.readout!r})")
        if self.centre not in (None, "none", "root", "joint0"):
            raise ConfigError(f"centre must be none, root or joint0 (got {self.centre!r})")

    @property
    def faithful(self) -> bool:
        return self.mode == "faithful"

    def resolved(self) -> "TrainConfig":
        """A copy with every ``None`` replaced by its mode/dataset default (what a run actually used)."""
        F = self.faithful
        ds = self.dataset
        r = dict(
            t=TEMPERATURE[ds] if (F and ds != "CASIA_B") or self.t is None else self.t,
            epochs=ENCODER_EPOCHS[ds] if self.epochs is None else self.epochs,
            l2=(0.02 if F else 0.0) if self.l2 is None else self.l2,
            weight_decay=(0.0 if F else 1e-4) if self.weight_decay is None else self.weight_decay,
            positives=("adjacent" if F else "metadata") if self.positives is None else self.positives,
            reduction=("sum" if F else "mean") if self.reduction is None else self.reduction,
            val_frac=(0.0 if F else 0.15) if self.val_frac is None else self.val_frac,
            centre=(("joint0" if ds == "CASIA_B" else "none") if F else "root") if self.centre is None else self.centre,
            bone_weight=(0.0 if F else 0.5) if self.bone_weight is None else self.bone_weight,
            readout=("ap" if F else "head") if self.readout is None else self.readout,
            encoder_subset=(F and ds == "BIWI") if self.encoder_subset is None else self.encoder_subset,
            rn_epochs=(RN_EPOCHS[ds] if F else min(RN_EPOCHS[ds], 100)) if self.rn_epochs is None else self.rn_epochs,
            rn_weight_decay=(0.0 if F else 1e-3) if self.rn_weight_decay is None else self.rn_weight_decay,
            rn_dropout=(0.0 if F else 0.2) if self.rn_dropout is None else self.rn_dropout,
            rn_select=("probe" if F else "val") if self.rn_select is None else self.rn_select,
        )
        return replace(self, **r)

    def encoder_config(self, J: int) -> EncoderConfig:
        F = self.faithful
        return EncoderConfig(J=J, f=self.f, hidden=self.hidden, model=self.model, attention=self.attention,
                             decoder_input=self.decoder_input, head_init="normal" if F else "default",
                             dummy_copies=F, la_centre="reversed" if F else "task", faithful_plus=F)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return config_from_dict(cls, d, "training")


def load_yaml_config(path: str | os.PathLike) -> dict:
    """Read a ``configs/train_*.yaml``: a flat mapping of `TrainConfig` fields (unknown keys are an error)."""
    import yaml

    from cagereid import configs

    try:
        path = configs.resolve(path)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of training options")
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}")
    return data


# --------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------
def seed_everything(seed: int, deterministic: bool = False) -> None:
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def feature_config(train: WindowSet, cfg: TrainConfig) -> FeatureConfig:
    """Normalisation and bone-length cue for this run; bone statistics from the training windows."""
    centre: list[int] = []
    bones: list[list[int]] = []
    layout = None
    try:
        from pose.layouts import get_layout

        layout = get_layout(train.layout or LAYOUT[cfg.dataset])
    except Exception:  # noqa: BLE001 - unknown layout: no bones, joint 0 as root
        layout = None
    if cfg.centre == "root":
        centre = list(layout.root_joints) if layout is not None else [0]
    elif cfg.centre == "joint0":
        centre = [0]
    fc = FeatureConfig(centre=centre, bone_weight=float(cfg.bone_weight), readout=cfg.readout)
    if cfg.bone_weight > 0 and layout is not None and layout.J == train.J:
        bones = [[int(i), int(j)] for i, j in layout.bones]
        bl = bone_lengths(normalise_windows(train.windows, centre), bones)
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


class _Log:
    """Append-only JSONL log (one object per line, flushed)."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self, **rec) -> None:
        rec = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **rec}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, default=float) + "\n")


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(), disable=not enabled, transient=False)


# --------------------------------------------------------------------------------------------------------
# Encoder training
# --------------------------------------------------------------------------------------------------------
class _EncoderData:
    """Normalised training windows on the device plus everything a batch needs (targets, permutations)."""

    def __init__(self, ws: WindowSet, cfg: TrainConfig, ecfg: EncoderConfig, fc: FeatureConfig, device, seed: int):
        self.X = normalise_windows(ws.windows, fc.centre).to(device)  # (N, f, J, 3)
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


def pretext_pair(task: str, x: torch.Tensor, next_x: torch.Tensor | None = None,
                 perm: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder input and decoder target ``(B, f, J)`` of one pretext task (CAGE_SPEC §2.4).

    rev_rec: ``(x, reversed x)`` with ``target[n, k] = x[n, f−1−k]``; prediction: ``(x, next_x)``;
    sorting: ``(x with frames permuted by perm (B, f), x)``.
    """
    if task == "rev_rec":
        return x, x.flip(1)
    if task == "prediction":
        return x, next_x
    if task == "sorting":
        return torch.gather(x, 1, perm[..., None].expand_as(x)), x
    raise ConfigError(f"unknown pretext task {task!r}")


def _partners(data: "_EncoderData", pool: np.ndarray, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One positive partner per anchor, drawn from ``pool`` only (training windows never pair with held-out ones)."""
    k = (len(pool), int(pool[0]) if len(pool) else -1, int(pool[-1]) if len(pool) else -1)
    if k not in data._partner_index:
        local = np.full(data.n, -1, dtype=np.int64)
        local[pool] = np.arange(len(pool))
        meta = _positive_index(data._rec_np[pool], data._start_np[pool], data._max_shift)
        data._partner_index[k] = (local, meta)
    local, meta = data._partner_index[k]
    return pool[sample_partners(meta, local[anchors], rng)]


def _model_losses(model: CageEncoder, data: _EncoderData, idx: torch.Tensor, cfg: TrainConfig,
                  profiles: dict) -> dict[str, torch.Tensor]:
    ecfg = model.cfg
    xb = data.X[idx]  # (B, f, J, 3)
    zero = xb.new_zeros(())
    rec, la, con = zero, zero, zero
    if cfg.positives == "metadata":
        pos = positive_mask(data.recording[idx], data.start[idx], cfg.max_shift)
    for task in ecfg.tasks:
        for ai, a in enumerate(ecfg.axes):
            inp, tgt = pretext_pair(
                task, xb[..., ai],
                next_x=data.X[data.next_idx[idx]][..., ai] if task == "prediction" else None,
                perm=data.perm[ai][idx] if task == "sorting" else None)
            m = model.models[key(task, a)]
            A, C, y_hat = m(inp, model.decoder_inputs(tgt))
            rec = rec + rec_loss(y_hat, tgt, cfg.reduction)
            if ecfg.task_attention(task) == "LA":
                la = la + la_loss(A, profiles[task].to(A.dtype), cfg.reduction)
            z = m.project(C).float()
            con = con + (adjacent_ntxent(z, cfg.t) if cfg.positives == "adjacent"
                         else multi_positive_ntxent(z, pos, cfg.t))
    return {"rec": rec.float(), "la": la.float(), "con": con.float()}


def _batches(data: _EncoderData, train_idx: np.ndarray, cfg: TrainConfig, rng: np.random.Generator):
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


def train_encoder(train: WindowSet, cfg: TrainConfig, out_dir: str | os.PathLike, seed: int | None = None,
                  device: str = "auto", progress: bool = True, resume: bool = False,
                  command: str | None = None) -> Path:
    """Train the (task, axis) encoder models without labels on ``train``; write ``encoder.pt`` + ``encoder.json``.

    Faithful: contiguous unshuffled batches, adjacent positives, summed losses + L2 0.02, final checkpoint.
    Improved: shuffled anchor/positive batches from recording metadata, mean losses, validation tail of each
    recording for best-epoch selection. Returns the path of ``encoder.pt``.
    """
    cfg = cfg.resolved()
    seed = cfg.seed if seed is None else int(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(resolve_device(device if device != "auto" else cfg.device))
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
    data = _EncoderData(ws, cfg, ecfg, fc, dev, seed)
    model = CageEncoder(ecfg).to(dev)
    profiles = {t: la_gaussian(cfg.f, ecfg.la_profile_centre(t), device=dev) for t in ecfg.tasks}
    opt_cls = torch.optim.AdamW if cfg.weight_decay > 0 else torch.optim.Adam
    opt_kw = {"weight_decay": cfg.weight_decay} if cfg.weight_decay > 0 else {}
    opt = opt_cls(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, **opt_kw)
    use_amp = cfg.amp and dev.type == "cuda"
    log = _Log(out / "log.jsonl")

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

    def evaluate_val(epoch: int) -> float:
        if len(va_idx) < 2:
            return float("nan")
        model.eval()
        rng = np.random.default_rng([seed, 10_000])  # same val batches every epoch
        tot, n = 0.0, 0
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
            for b in _batches(data, va_idx, cfg, rng):
                parts = _model_losses(model, data, torch.as_tensor(b, device=dev), cfg, profiles)
                tot += float(cfg.rec_weight * parts["rec"] + cfg.la_weight * parts["la"] + cfg.con_weight * parts["con"])
                n += 1
        model.train()
        return tot / max(n, 1)

    t_start = time.time()
    history = []
    with _progress(progress) as bar:
        task_id = bar.add_task("encoder", total=cfg.epochs, completed=start_epoch, info="")
        for epoch in range(start_epoch, cfg.epochs):
            rng = np.random.default_rng([seed, epoch])
            torch.manual_seed(seed * 100_003 + epoch)
            model.train()
            sums = {"loss": 0.0, "rec": 0.0, "la": 0.0, "con": 0.0, "l2": 0.0}
            n_batches, n_windows, t0 = 0, 0, time.time()
            for b in _batches(data, tr_idx, cfg, rng):
                idx = torch.as_tensor(b, device=dev)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
                    parts = _model_losses(model, data, idx, cfg, profiles)
                l2 = l2_penalty(model.parameters(), cfg.l2) if cfg.l2 > 0 else parts["rec"].new_zeros(())
                loss = cfg.rec_weight * parts["rec"] + cfg.la_weight * parts["la"] + cfg.con_weight * parts["con"] + l2
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip > 0:
                    torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip)
                opt.step()
                for k, v in (("loss", loss), ("rec", parts["rec"]), ("la", parts["la"]), ("con", parts["con"]), ("l2", l2)):
                    sums[k] += float(v.detach())
                n_batches += 1
                n_windows += len(b)
                wps = n_windows / max(time.time() - t0, 1e-9)
                bar.update(task_id, info=f"epoch {epoch + 1} loss {sums['loss'] / n_batches:.4g} {wps:.0f} win/s")
            mean = {k: v / max(n_batches, 1) for k, v in sums.items()}
            val = evaluate_val(epoch)
            rec = {"phase": "encoder", "epoch": epoch + 1, **mean, "val_loss": val, "batches": n_batches,
                   "windows_per_s": n_windows / max(time.time() - t0, 1e-9), "seconds": time.time() - t0}
            history.append(rec)
            log(**rec)
            if not math.isnan(val) and val < best:
                best, best_epoch = val, epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            bar.update(task_id, advance=1, info=f"epoch {epoch + 1} loss {mean['loss']:.4g} val {val:.4g} "
                                               f"{rec['windows_per_s']:.0f} win/s")
            save_torch(state_path, {"model": model.state_dict(), "optim": opt.state_dict(), "epoch": epoch,
                                    "best": best, "best_epoch": best_epoch, "best_state": best_state,
                                    "config": cfg_json})

    select = "final epoch"
    if best_state is not None and not cfg.faithful:
        model.load_state_dict(best_state)
        select = f"best validation loss (epoch {best_epoch})"
    enc_path = out / "encoder.pt"
    save_torch(enc_path, {k: v.detach().cpu() for k, v in model.state_dict().items()})
    last = history[-1] if history else {}
    write_json(out / "encoder.json", {
        "encoder": ecfg.to_dict(), "features": fc.to_dict(), "layout": train.layout or LAYOUT[cfg.dataset],
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
    return enc_path


# --------------------------------------------------------------------------------------------------------
# Features and recognition network
# --------------------------------------------------------------------------------------------------------
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
    with _progress(progress) as bar:
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


# --------------------------------------------------------------------------------------------------------
# Orchestration (`cagereid train`)
# --------------------------------------------------------------------------------------------------------
@dataclass
class RunData:
    encoder_train: WindowSet  # windows the encoders see (no labels used)
    rn_train: WindowSet  # labelled windows of the RN (= gallery)
    probes: dict  # name -> WindowSet


def load_run_data(dataset: str, data_root: str | os.PathLike, f: int, view: int | None = None,
                  encoder_runs: str = "all") -> RunData:
    """Training/probe windows of ``dataset``. UCALGARY: RN on Run1, probes Run2 (same) and Run3-6 (cross),
    encoder on all runs (``encoder_runs='all'``, no labels) or Run1 only (``'run1'``)."""
    if dataset == "UCALGARY":
        from offline.datasets.ucalgary import load_ucalgary, ucalgary_windows

        data = load_ucalgary(data_root)
        run1 = ucalgary_windows(data, f, 1)
        enc = run1 if encoder_runs == "run1" else ucalgary_windows(data, f, [1, 2, 3, 4, 5, 6])
        probes = {"same": ucalgary_windows(data, f, 2), "cross": ucalgary_windows(data, f, [3, 4, 5, 6])}
        return RunData(enc, run1, probes)
    from offline.datasets.cage_layout import read_cage_dataset

    splits = read_cage_dataset(data_root, dataset, f, view)
    train = splits.pop("train")
    return RunData(train, train, splits)


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
    rn = train_rn(rn_feats, rn_y, rcfg, val=vals, progress=progress, device=device, log=_Log(out / "log.jsonl"),
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
        "mode": rcfg.mode, "input": "CageExtractor.rn_rows (offline.train.extract_features)",
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


def train_run(train: WindowSet, rn_train: WindowSet, out_dir: str | os.PathLike, seed: int = 0, device: str = "auto",
              config: str | os.PathLike | dict | TrainConfig | None = None, epochs: int | None = None,
              rn_epochs: int | None = None, progress: bool = False, probes: dict | None = None) -> Path:
    """Encoder on ``train`` (labels unused) + RN on ``rn_train`` into ``out_dir`` (for the evaluation harness).

    ``config``: a `TrainConfig`, a dict of its fields or a YAML path; dataset and f come from ``train``.
    """
    if isinstance(config, TrainConfig):
        values = config.to_dict()
    elif isinstance(config, dict):
        values = dict(config)
    elif config:
        values = load_yaml_config(config)
    else:
        values = {}
    values.update(dataset=train.dataset if train.dataset in DATASETS else values.get("dataset", "BIWI"),
                  f=train.f, seed=seed)
    if epochs is not None:
        values["epochs"] = epochs
    if rn_epochs is not None:
        values["rn_epochs"] = rn_epochs
    cfg = TrainConfig.from_dict(values)
    dev = resolve_device(device)
    train_encoder(train, cfg, out_dir, seed, dev, progress)
    extractor = CageExtractor.from_checkpoint(out_dir, device=dev)
    fit_rn(extractor, rn_train, cfg, out_dir, probes=probes, progress=progress, device=dev)
    return Path(out_dir)


def run_training(cfg: TrainConfig, data_root: str | os.PathLike, out: str | os.PathLike, train_flag: int = 1,
                 resume: bool = False, progress: bool = True, encoder_runs: str = "all",
                 command: str | None = None, print_fn=print) -> dict:
    """The whole ``cagereid train`` job. train_flag 1: encoders + CAGEs + RN; 0: load encoders, RN only.

    Returns the summary (also written to ``out/summary.json``): per probe split the window-level Rank-1 of the
    selected RN epoch and of the last epoch.
    """
    rcfg = cfg.resolved()
    out = Path(out)
    data = load_run_data(rcfg.dataset, data_root, rcfg.f, rcfg.view, encoder_runs)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(rcfg.device)
    print_fn(f"{rcfg.dataset} f={rcfg.f} mode={rcfg.mode} model={rcfg.model} attention={rcfg.attention} "
             f"t={rcfg.t} device={device}: encoder {data.encoder_train.n} windows, RN {data.rn_train.n}, "
             + ", ".join(f"{k} {v.n}" for k, v in data.probes.items()))
    if train_flag == 1:
        train_encoder(data.encoder_train, rcfg, out, rcfg.seed, device, progress, resume, command)
    elif not (out / "encoder.pt").is_file():
        raise ConfigError(f"{out}/encoder.pt: no trained encoder to load (train_flag 0 needs one; run with --train_flag 1)")
    extractor = CageExtractor.from_checkpoint(out, device=device)
    res = fit_rn(extractor, data.rn_train, rcfg, out, probes=data.probes, progress=progress, device=device,
                 command=command)
    summary = {"dataset": rcfg.dataset, "f": rcfg.f, "mode": rcfg.mode, "model": rcfg.model,
               "attention": rcfg.attention, "encoder_runs": encoder_runs if rcfg.dataset == "UCALGARY" else None,
               "rn_selection": res["selection"], "selected_epoch": res["selected_epoch"], "metrics": res["metrics"],
               "feature_seconds": res["feature_seconds"], "device": device, "out": str(out)}
    write_json(out / "summary.json", summary)
    return summary
