"""Pretext tasks' encoder inputs and decoder targets (CAGE_SPEC §2.4), for training and feature extraction.

The reversal rule ``target[n, k] = x[n, f−1−k]`` is written here for tensors and in `cages.windows.reverse`
for numpy arrays (the on-disk CAGE layout stores reversed targets).
"""
from __future__ import annotations

import torch

from cages.config import ConfigError


def pretext_pair(task: str, x: torch.Tensor, next_x: torch.Tensor | None = None,
                 perm: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder input and decoder target ``(B, f, J)`` of one pretext task (CAGE_SPEC §2.4) in training.

    rev_rec: ``(x, reversed x)``; prediction: ``(x, next_x)``; sorting: ``(x with frames permuted by perm (B, f),
    x)``.
    """
    if task == "rev_rec":
        return x, x.flip(1)
    if task == "prediction":
        return x, next_x
    if task == "sorting":
        return torch.gather(x, 1, perm[..., None].expand_as(x)), x
    raise ConfigError(f"unknown pretext task {task!r}")


def extraction_target(task: str, x: torch.Tensor) -> torch.Tensor:
    """The target whose teacher-forcing inputs feature extraction uses for ``task`` on the unshuffled window ``x``:
    the reversed window for rev_rec, the window itself otherwise (no next window or permutation exists then)."""
    return x.flip(1) if task == "rev_rec" else x
