"""Cutting skeleton sequences into windows, and the per-window normalisations the model uses.

Units: whatever the sequence is in (metres for Kinect and MediaPipe world landmarks). Shapes:
a sequence is ``(T, J, 3)`` (frames, joints, x/y/z); windows are ``(N, f, J, 3)``.
Both `offline` (dataset preparation, training) and `stream` (live sliding windows) call this module,
so a window means the same thing everywhere.
"""
from __future__ import annotations

import numpy as np


def window_starts(T: int, f: int, stride: int = 1, offset: int = 0) -> np.ndarray:
    """Start frames of the windows ``[s, s+f)`` with ``s = offset, offset+stride, ...`` that fit in ``T``."""
    if f < 1 or stride < 1 or offset < 0:
        raise ValueError(f"need f >= 1, stride >= 1, offset >= 0 (got f={f}, stride={stride}, offset={offset})")
    last = T - f
    if last < offset:
        return np.zeros(0, dtype=np.int64)
    return np.arange(offset, last + 1, stride, dtype=np.int64)


def sliding_windows(seq: np.ndarray, f: int, stride: int = 1, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``seq`` ``(T, J, 3)`` into windows ``(N, f, J, 3)``; also return their start frames ``(N,)``.

    Windows are copies (not views), in temporal order.
    """
    seq = np.asarray(seq)
    starts = window_starts(len(seq), f, stride, offset)
    if len(starts) == 0:
        return np.zeros((0, f) + seq.shape[1:], dtype=seq.dtype), starts
    idx = starts[:, None] + np.arange(f)[None, :]  # (N, f)
    return seq[idx], starts


def reverse(windows: np.ndarray) -> np.ndarray:
    """The reverse-reconstruction target: ``target[n, k] = source[n, f-1-k]`` (CAGE_SPEC §1.2)."""
    return np.ascontiguousarray(np.asarray(windows)[:, ::-1])


def centre(windows: np.ndarray, root: int | list[int]) -> np.ndarray:
    """Subtract the root joint (or the mean of several root joints) from every joint, per frame.

    ``windows`` is ``(..., J, 3)``; the root becomes the origin of every frame. Position on the walkway
    otherwise dominates raw coordinates (it identifies the spot, not the person).
    """
    w = np.asarray(windows, dtype=np.float64)
    r = w[..., [root] if isinstance(root, int) else list(root), :].mean(axis=-2, keepdims=True)
    return w - r
