"""CAGE feature extraction: raw skeleton windows in, frame-level (AP), sequence-level (SC) and retrieval
embeddings out (CAGE_SPEC §4).

`CageExtractor` is built once (from a trained `CageEncoder` and its `FeatureConfig`, or from a checkpoint
folder written by ``cagereid train``) and then called on batches of RAW windows ``(B, f, J, 3)`` (numpy or torch,
the layout the model was trained on). Normalisation (root centring) is part of the checkpoint and applied here,
so callers never normalise themselves.

* ``frame_level(w) -> (B, f, D_ap)``: row ``t`` = ``[c_t^x ; c_t^y ; c_t^z]`` (per axis the blocks of every
  pretext model, ``[rev_rec, prediction, sorting]`` for rev_rec_plus). ``D_ap = 768`` for one task.
* ``sequence_level(w) -> (B, f·D_ap)``: ``[vec(C^x) ; vec(C^y) ; vec(C^z)]``, each ``vec`` step-major.
* ``rn_rows(w) -> (B, f, D_rn)``: what the recognition network reads: the AP rows (= ``frame_level``), plus,
  only when ``rn_bones`` is set, the window's z-scored mean bone lengths repeated on every row.
* ``embed(w) -> (B, D)``: the single retrieval embedding (P2 protocol, live gallery; compare with Euclidean
  distance): ``[ normalize(r) ; bone_weight · zscore(mean bone lengths) / sqrt(n_bones) ]`` where ``r`` is, by
  ``FeatureConfig.readout``, the mean AP row (``ap``, the paper's CAGEs; faithful mode) or the concatenated
  L2-normalised contrastive projections ``z`` of every axis/task model (``head``; improved mode). The
  contrastive loss shapes ``z`` directly (windows of one walk close together), and on the real UCalgary walks
  it retrieves far better than the AP rows (docs/model.md). With ``bone_weight = 0`` the cue is absent.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cages.config import ConfigError, config_from_dict
from cages.encoder import CageEncoder, EncoderConfig, key


READOUTS = ("ap", "head")


@dataclass
class FeatureConfig:
    """Input normalisation and extra cues; stored in ``encoder.json`` next to the weights."""

    centre: list[int] = field(default_factory=list)  # joint(s) whose mean is subtracted per frame; [] = raw coords
    bones: list[list[int]] = field(default_factory=list)  # (i, j) joint pairs of the bone-length cue
    bone_mean: list[float] = field(default_factory=list)  # training statistics of the mean bone lengths (metres)
    bone_std: list[float] = field(default_factory=list)
    bone_weight: float = 0.0  # weight of the bone-length cue in `embed`; 0 = off (faithful)
    rn_bones: bool = False  # also append the z-scored bone lengths to the RN rows (measured: no gain on UCalgary)
    facing: list[int] = field(default_factory=list)  # [left hip, right hip, left shoulder, right shoulder]: turn
    # every window about the vertical (y) axis so the body faces one way (walks in both directions alike); [] = off
    readout: str = "ap"  # what `embed` reads: ap = mean AP row (the paper's CAGEs) | head = contrastive projections
    batch_size: int = 1024  # windows per forward pass inside the extractor

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        fc = config_from_dict(cls, d, "feature")
        if fc.readout not in READOUTS:
            raise ConfigError(f"feature readout must be one of {', '.join(READOUTS)} (got {fc.readout!r})")
        return fc

    @property
    def use_bones(self) -> bool:
        return self.bone_weight > 0 and len(self.bones) > 0


def normalise_windows(windows, centre: list[int], facing: list[int] | None = None) -> torch.Tensor:
    """RAW ``(B, f, J, 3)`` -> float32 tensor, root-centred per frame when ``centre`` is non-empty, and, when
    ``facing`` names ``[left hip, right hip, left shoulder, right shoulder]``, turned about the vertical (y) axis so
    that the window's mean left-to-right body axis (hips + shoulders, projected on the floor) points along +x: a
    walk past the camera one way and the other way then look alike (layouts are y-up).

    Missing joints (NaN) become the root position (0 after centring) so that a partly tracked skeleton does not
    poison the whole window.
    """
    w = torch.as_tensor(np.asarray(windows) if not torch.is_tensor(windows) else windows).float()
    if w.dim() != 4 or w.shape[-1] != 3:
        raise ValueError(f"windows must be (B, f, J, 3), got {tuple(w.shape)}")
    if centre:
        root = w[..., centre, :].nanmean(dim=-2, keepdim=True) if torch.isnan(w).any() else w[..., centre, :].mean(-2, keepdim=True)
        w = w - root
    w = torch.nan_to_num(w, nan=0.0)
    if facing:
        lh, rh, ls, rs = facing
        v = (w[..., rh, :] - w[..., lh, :] + w[..., rs, :] - w[..., ls, :]).mean(dim=1)  # (B, 3)
        phi = torch.atan2(v[:, 2], v[:, 0])[:, None, None]  # 0 when the axis has no length
        c, s = torch.cos(phi), torch.sin(phi)
        x, y, z = w[..., 0], w[..., 1], w[..., 2]
        w = torch.stack([c * x + s * z, y, c * z - s * x], dim=-1)
    return w


def bone_lengths(windows: torch.Tensor, bones: list[list[int]]) -> torch.Tensor:
    """Mean bone lengths over the window's frames: ``(B, f, J, 3) -> (B, n_bones)`` (same units as input)."""
    b = torch.as_tensor(bones, dtype=torch.long, device=windows.device)
    seg = windows[..., b[:, 0], :] - windows[..., b[:, 1], :]  # (B, f, n_bones, 3)
    return seg.norm(dim=-1).mean(dim=1)


class CageExtractor:
    def __init__(self, model: CageEncoder, config: FeatureConfig | None = None, device: str | torch.device = "cpu"):
        self.device = torch.device(resolve_device(str(device)))
        self.model = model.to(self.device).eval()
        self.cfg: EncoderConfig = model.cfg
        self.features = config or FeatureConfig()
        self.meta: dict = {}
        self._rows = _APRows(self.model)
        self._heads = _HeadRows(self.model)
        self._traced: torch.jit.ScriptModule | None = None
        self._traced_head: torch.jit.ScriptModule | None = None

    # ---- construction -----------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> "CageExtractor":
        """Load ``DIR/encoder.pt`` + ``DIR/encoder.json`` (or a ``.pt`` file with its sibling ``.json``)."""
        from cages.io import load_torch

        path = Path(path)
        pt = path / "encoder.pt" if path.is_dir() else path
        meta_path = pt.with_suffix(".json")
        if not pt.is_file() or not meta_path.is_file():
            raise ConfigError(f"{path}: not a trained encoder (need encoder.pt and encoder.json)")
        meta = json.loads(meta_path.read_text())
        model = CageEncoder(EncoderConfig.from_dict(meta["encoder"]))
        model.load_state_dict(load_torch(pt))
        ext = cls(model, FeatureConfig.from_dict(meta.get("features", {})), device=device)
        ext.meta = meta
        return ext

    @property
    def f(self) -> int:
        """Window length the model was trained on."""
        return self.cfg.f

    @property
    def layout(self) -> str:
        """Joint layout name of the training data (from the checkpoint; '' for an in-memory model)."""
        return str(self.meta.get("layout", ""))

    # ---- features ---------------------------------------------------------------------------------------
    def _batches(self, windows):
        w = normalise_windows(windows, self.features.centre, self.features.facing)
        if w.shape[1] != self.cfg.f or w.shape[2] != self.cfg.J:
            raise ConfigError(f"windows are (B, {w.shape[1]}, {w.shape[2]}, 3) but the model "
                              f"{self.meta.get('layout') or ''} expects (B, {self.cfg.f}, {self.cfg.J}, 3): a model "
                              "of another joint layout or window length")
        bs = max(1, int(self.features.batch_size))
        for i in range(0, len(w), bs):
            yield w[i: i + bs].to(self.device)

    def _ap(self, w: torch.Tensor) -> torch.Tensor:
        if self._traced is not None:
            return self._traced(w)
        return self._rows(w)

    def _head(self, w: torch.Tensor) -> torch.Tensor:
        if self._traced_head is not None:
            return self._traced_head(w)
        return self._heads(w)

    def trace(self) -> "CageExtractor":
        """Run the pass `embed` needs (AP rows or head projections, by ``readout``) as a traced, frozen
        TorchScript graph from now on (inference only).

        Same numbers (checked here on a random batch); on CPU about 1.4x faster at the small batches of the
        live pipeline, because the Python cost of ~300 small tensor ops per pass is gone. The weights are baked
        in: use it for a loaded model, not one that is still training. Returns ``self``.
        """
        sample = torch.randn(3, self.cfg.f, self.cfg.J, 3, generator=torch.Generator().manual_seed(0)).to(self.device)
        if self.features.readout == "head":
            self._traced_head = self._trace(self._heads, sample)
        else:
            self._traced = self._trace(self._rows, sample)
        return self

    @staticmethod
    def _trace(mod: torch.nn.Module, sample: torch.Tensor) -> torch.jit.ScriptModule:
        import warnings

        mod = mod.eval()
        with torch.no_grad(), warnings.catch_warnings():
            # the Python ints the pass reads from shapes are constant indeed (`_batches` enforces f and J; the
            # batch size stays symbolic: checked at several sizes in the tests)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            # torch 2.13 marks torch.jit deprecated but ships it; if a later torch drops it, this raises and
            # callers fall back to the eager pass (stream.identify.load_encoder does)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
            traced = torch.jit.freeze(torch.jit.trace(mod, sample, check_trace=False))
            probe = sample[:2] * 0.5
            if not torch.allclose(traced(probe), mod(probe), atol=1e-5):
                raise RuntimeError("traced encoder differs from the eager one")
        return traced

    def _bone_cue(self, w: torch.Tensor) -> torch.Tensor:
        fc = self.features
        mean = torch.as_tensor(fc.bone_mean, device=w.device)
        std = torch.as_tensor(fc.bone_std, device=w.device)
        return (bone_lengths(w, fc.bones) - mean) / std  # (B, n_bones)

    @torch.no_grad()
    def frame_level(self, windows) -> torch.Tensor:
        """AP CAGE rows ``(B, f, D_ap)`` (CPU float32)."""
        return self._cat([self._ap(w).cpu() for w in self._batches(windows)], (0, self.cfg.f, self.cfg.d_ap))

    @torch.no_grad()
    def sequence_level(self, windows) -> torch.Tensor:
        """SC CAGEs ``(B, f·D_ap)``: per axis ``vec(C)`` (step-major), axes stacked."""
        n_blk = len(self.cfg.feature_blocks)
        out = []
        for w in self._batches(windows):
            ap = self._ap(w)  # (B, f, axes·blocks·h)
            B, f, _ = ap.shape
            per_axis = ap.reshape(B, f, len(self.cfg.axes), n_blk * self.cfg.hidden).permute(0, 2, 1, 3)
            out.append(per_axis.reshape(B, -1).cpu())
        return self._cat(out, (0, self.cfg.f * self.cfg.d_ap))

    @property
    def d_rn(self) -> int:
        return self.cfg.d_ap + (len(self.features.bones) if self._rn_bones else 0)

    @property
    def _rn_bones(self) -> bool:
        return self.features.use_bones and self.features.rn_bones

    @torch.no_grad()
    def rn_rows(self, windows) -> torch.Tensor:
        """Recognition-network input rows ``(B, f, D_rn)``: AP rows (+ bone-length cue in improved mode)."""
        out = []
        for w in self._batches(windows):
            ap = self._ap(w)
            if self._rn_bones:
                cue = self._bone_cue(w)[:, None, :].expand(-1, ap.shape[1], -1)
                ap = torch.cat([ap, cue], dim=-1)
            out.append(ap.cpu())
        return self._cat(out, (0, self.cfg.f, self.d_rn))

    @torch.no_grad()
    def embed(self, windows) -> torch.Tensor:
        """Retrieval embedding ``(B, D)``; see the module docstring. Compare with Euclidean distance."""
        out = []
        for w in self._batches(windows):
            r = self._head(w) if self.features.readout == "head" else self._ap(w).mean(dim=1)
            e = F.normalize(r, dim=-1)
            if self.features.use_bones:
                nb = len(self.features.bones)
                e = torch.cat([e, self.features.bone_weight * self._bone_cue(w) / nb**0.5], dim=-1)
            out.append(e.cpu())
        return self._cat(out, (0, self.d_embed))

    @property
    def d_embed(self) -> int:
        d = len(self.model.keys()) * self.cfg.head_dim if self.features.readout == "head" else self.cfg.d_ap
        return d + (len(self.features.bones) if self.features.use_bones else 0)

    @property
    def fingerprint(self) -> str:
        """Short stable hash of the weights and the feature config (a gallery stores it).

        ``readout: ap`` and an empty ``facing`` are left out, so checkpoints written before those settings
        existed keep their fingerprint (and their galleries); any other value changes it, as it changes every
        embedding."""
        h = hashlib.sha256()
        for name, t in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
        fc = self.features.to_dict()
        if fc.get("readout") == "ap":
            fc.pop("readout")
        if not fc.get("facing"):
            fc.pop("facing", None)
        h.update(json.dumps(fc, sort_keys=True).encode())
        return h.hexdigest()[:12]

    @staticmethod
    def _cat(parts: list[torch.Tensor], empty_shape: tuple) -> torch.Tensor:
        return torch.cat(parts, dim=0) if parts else torch.zeros(empty_shape)


class _APRows(torch.nn.Module):
    """Normalised windows ``(B, f, J, 3)`` -> AP rows ``(B, f, D_ap)``: per axis the context blocks of the
    feature tasks, axes concatenated."""

    def __init__(self, model: CageEncoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        cfg = self.model.cfg
        ctx = self.model.contexts(w)  # {task_axis: (B, f, h)}
        per_axis = [torch.cat([ctx[key(t, a)] for t in cfg.feature_blocks], dim=-1) for a in cfg.axes]
        return torch.cat(per_axis, dim=-1).float()


class _HeadRows(torch.nn.Module):
    """Normalised windows ``(B, f, J, 3)`` -> ``(B, models·head_dim)``: every axis/task model's contrastive
    projection of its context matrix, each L2-normalised, concatenated."""

    def __init__(self, model: CageEncoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        ctx = self.model.contexts(w)
        return torch.cat([F.normalize(self.model.models[k].project(ctx[k]), dim=-1) for k in self.model.keys()],
                         dim=-1).float()


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else is passed to torch."""
    if device in ("auto", "", "None"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.isdigit():  # the original `--gpu 0`
        return f"cuda:{device}" if torch.cuda.is_available() else "cpu"
    return device
