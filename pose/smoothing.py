"""Temporal smoothing (One-Euro filter) and short-gap filling with explicit flags.

`OneEuroFilter` (Casiez, Roussel & Vogel, CHI 2012) is a causal low-pass filter whose cut-off rises with
speed: still joints are de-jittered strongly, fast limbs lag little. It works on arrays of any shape with
timestamps in seconds; NaN entries (a joint not seen) keep their last state and are returned as NaN.

`fill_gaps` interpolates *short* interior gaps of a track (frames where the person was not found, at most
``max_gap`` in a row, between two found frames) linearly in time and returns a ``filled`` flag per frame, so a
consumer can always tell measured frames (``found``) from interpolated ones (``filled``). Longer gaps and the
frames before the first / after the last detection stay NaN: nothing is invented there.
"""
from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """``f(x, t) -> x_smoothed`` for arrays of a fixed shape.

    ``min_cutoff`` (Hz): cut-off at rest; lower = smoother, more lag. ``beta``: how fast the cut-off grows
    with speed (units of x per second); higher = less lag on fast motion. ``d_cutoff`` (Hz): cut-off of the
    speed estimate. ``reset_after`` (s): a gap longer than this restarts the filter (no smoothing across it).
    """

    def __init__(self, min_cutoff: float = 2.0, beta: float = 1.0, d_cutoff: float = 1.0,
                 reset_after: float = 0.5):
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset_after = float(reset_after)
        self.reset()

    def reset(self) -> None:
        self._x = None   # last filtered value
        self._dx = None  # last filtered derivative
        self._t = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t - self._t > self.reset_after or self._x.shape != x.shape:
            self._x = x.copy()
            self._dx = np.zeros_like(x)
            self._t = float(t)
            return x.copy()
        dt = float(t) - self._t
        if dt <= 0:  # same or older timestamp: nothing to filter against
            return np.where(np.isfinite(x), self._x, np.nan)
        seen = np.isfinite(x)
        fresh = seen & ~np.isfinite(self._x)  # joint seen again after being missing: start from it
        prev = np.where(fresh, x, self._x)
        dx = np.where(seen, (x - prev) / dt, 0.0)
        a_d = _alpha(self.d_cutoff, dt)
        dx_hat = np.where(seen, a_d * dx + (1 - a_d) * self._dx, self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        a = _alpha(cutoff, dt)
        x_hat = np.where(seen, a * x + (1 - a) * prev, self._x)
        self._x, self._dx, self._t = x_hat, dx_hat, float(t)
        return np.where(seen, x_hat, np.nan)


def gap_runs(found: np.ndarray) -> list[tuple[int, int]]:
    """Interior runs of False in ``found (T,)`` as (start, stop) index pairs (stop exclusive), i.e. gaps
    with a found frame on both sides."""
    found = np.asarray(found, dtype=bool)
    idx = np.flatnonzero(found)
    if len(idx) < 2:
        return []
    runs = []
    for a, b in zip(idx[:-1], idx[1:]):
        if b - a > 1:
            runs.append((int(a + 1), int(b)))
    return runs


def fill_gaps(values: np.ndarray, found: np.ndarray, timestamps: np.ndarray | None = None,
              max_gap: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate ``values (T, ...)`` over interior gaps of at most ``max_gap`` frames.

    Interpolation is in ``timestamps (T,)`` (frame index when None) between the found frames on each side, per
    element; an element NaN on either side stays NaN. Returns ``(filled_values, filled (T,) bool)``; frames
    that were found are returned unchanged and are never flagged.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    found = np.asarray(found, dtype=bool)
    if out.shape[0] != found.shape[0]:
        raise ValueError(f"values have {out.shape[0]} frames but found has {found.shape[0]}")
    t = np.arange(len(found), dtype=np.float64) if timestamps is None else np.asarray(timestamps, np.float64)
    filled = np.zeros(len(found), dtype=bool)
    for start, stop in gap_runs(found):
        if stop - start > max_gap:
            continue
        a, b = start - 1, stop
        span = t[b] - t[a]
        if not span > 0:
            continue
        w = (t[start:stop] - t[a]) / span  # (g,)
        w = w.reshape((-1,) + (1,) * (out.ndim - 1))
        out[start:stop] = (1 - w) * out[a] + w * out[b]
        filled[start:stop] = True
    return out, filled
