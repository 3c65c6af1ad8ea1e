"""The recognition network (RN) on frozen CAGE rows (CAGE_SPEC §5).

``Linear(D_in, 256) → ReLU → Linear(256, C)`` logits. Frame-level (AP) windows are scored by the **mean of the
``f`` raw logit vectors** of their rows (no softmax), argmax = prediction (train.py:4068-4082).

Faithful: N(0,1) weights, zero biases, raw inputs. Improved: PyTorch default init, inputs standardised with the
training rows' mean/std (stored as buffers, so a checkpoint carries them), optional dropout.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class RNConfig:
    d_in: int = 768  # feature width (AP: 768 for rev_rec; SC: 768·f)
    n_classes: int = 28  # identities
    hidden: int = 256
    init: str = "normal"  # normal: N(0,1) weights as the original | default: PyTorch init
    standardise: bool = False  # z-score inputs with training statistics (improved mode)
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class RecognitionNetwork(nn.Module):
    def __init__(self, cfg: RNConfig):
        super().__init__()
        self.cfg = cfg
        self.fc1 = nn.Linear(cfg.d_in, cfg.hidden)
        self.fc2 = nn.Linear(cfg.hidden, cfg.n_classes)
        self.drop = nn.Dropout(cfg.dropout)
        self.register_buffer("mean", torch.zeros(cfg.d_in))
        self.register_buffer("std", torch.ones(cfg.d_in))
        if cfg.init == "normal":
            for lin in (self.fc1, self.fc2):
                nn.init.normal_(lin.weight, 0.0, 1.0)
                nn.init.zeros_(lin.bias)

    def set_statistics(self, rows: torch.Tensor) -> None:
        """Store the per-column mean/std of the training rows ``(N, D_in)`` (used when ``standardise``)."""
        if self.cfg.standardise:
            self.mean.copy_(rows.mean(0))
            self.std.copy_(rows.std(0).clamp_min(1e-6))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows (..., D_in) -> logits (..., C)``."""
        if self.cfg.standardise:
            rows = (rows - self.mean) / self.std
        return self.fc2(self.drop(torch.relu(self.fc1(rows))))


def window_scores(logits: torch.Tensor, f: int) -> torch.Tensor:
    """Mean of the ``f`` frame-level logit vectors of each window.

    ``logits`` is ``(N·f, C)`` (rows of a window contiguous, the original's order) or ``(N, f, C)``;
    returns ``(N, C)``. SC features (one row per window) use ``f = 1``.
    """
    if logits.dim() == 2:
        if logits.shape[0] % f:
            raise ValueError(f"{logits.shape[0]} rows are not a multiple of f={f}")
        logits = logits.reshape(-1, f, logits.shape[-1])
    return logits.mean(dim=1)
