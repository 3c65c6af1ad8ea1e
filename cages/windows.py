"""Cutting skeleton sequences into windows, and the per-window normalisations the model uses.

Units: whatever the sequence is in (metres for Kinect and MediaPipe world landmarks). Shapes:
a sequence is ``(T, J, 3)`` (frames, joints, x/y/z); windows are ``(N, f, J, 3)``.
Both `offline` (dataset preparation, training) and `stream` (live sliding windows) call this module,
so a window means the same thing everywhere, including how a joint the pose estimator missed is filled
(`MissingJoints`: one causal per-frame rule that the live windower and offline tracks share).
"""
from __future__ import annotations

from dataclasses import dataclass

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


def warped_windows(seq: np.ndarray, f: int, rate: float, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``seq`` ``(T, J, 3)`` played at ``rate`` times the recorded speed: frame ``k`` of the window
    starting at ``s`` is ``seq`` at time ``s + rate * k``, linearly interpolated (``rate < 1`` looks like a
    slower walk, ``> 1`` a quicker one; ``rate = 1`` is `sliding_windows`). Returns ``(N, f, J, 3)`` and the
    start frames ``(N,)``."""
    seq = np.asarray(seq)
    if rate <= 0:
        raise ValueError(f"rate must be > 0 (got {rate})")
    span = rate * (f - 1)
    last = len(seq) - 1 - span
    if last < 0:
        return np.zeros((0, f) + seq.shape[1:], dtype=np.float64), np.zeros(0, dtype=np.int64)
    starts = np.arange(0, int(np.floor(last + 1e-9)) + 1, stride, dtype=np.int64)
    t = starts[:, None] + rate * np.arange(f)[None, :]  # (N, f)
    lo = np.minimum(np.floor(t).astype(np.int64), len(seq) - 1)
    hi = np.minimum(lo + 1, len(seq) - 1)
    w = (t - lo)[..., None, None]
    return (1 - w) * seq[lo] + w * seq[hi], starts


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


# ------------------------------------------------------------------------------------------------------------
# Missing joints: one policy for training, evaluation, enrolment and live (issue #14)
# ------------------------------------------------------------------------------------------------------------
#: The fill policies (`MissingJoints.policy`). Each is a causal, per-frame rule (the live windower sees one frame
#: at a time), applied in this order until the joint is known:
#:
#: * ``hold``: the joint's last filled position in this track (what the live windower always did), then root.
#: * ``mirror``: the joint's left/right twin in the same frame, reflected about the body's sagittal plane (through
#:   the root, normal = the shoulder/hip left-right axis), then hold, then root.
#: * ``root``: the root (hip centre) position: the joint carries no evidence (a masked joint).
#:
#: Every policy ends at the root, so every frame whose root is known yields a complete skeleton (a person seen
#: for ``f`` frames yields windows; a profile walker whose far arm is never seen is enrolled).
POLICIES = ("hold", "mirror", "root")
DEFAULT_POLICY = "mirror"


@dataclass(frozen=True)
class MissingJoints:
    """How a frame's missing joints are filled. ``mirror[i]``: joint i's other-side twin (i itself for centre
    joints); ``lateral``: ``(left, right)`` joint pairs whose difference is the body's left-right axis (shoulders,
    hips); ``root``: joint(s) whose mean is the root. Build one with `for_layout`.
    """

    policy: str = DEFAULT_POLICY
    mirror: tuple[int, ...] = ()
    lateral: tuple[tuple[int, int], ...] = ()
    root: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown missing-joint policy {self.policy!r} (use one of {', '.join(POLICIES)})")

    @classmethod
    def for_layout(cls, layout, policy: str = DEFAULT_POLICY) -> "MissingJoints":
        """The policy for a `pose.layouts.Layout` (anything with ``joints``, ``mirror`` and ``root_joints``)."""
        mirror = tuple(int(m) for m in layout.mirror)
        lateral = tuple((i, m) for i, m in enumerate(mirror) if i < m and any(
            k in layout.joints[i].lower() for k in ("shoulder", "hip")))
        return cls(policy, mirror, lateral, tuple(int(r) for r in layout.root_joints))

    def fill_frame(self, joints: np.ndarray, ok: np.ndarray, prev: np.ndarray | None = None) -> np.ndarray:
        """``joints (J, 3)`` with ``ok (J,)`` the joints seen this frame; ``prev (J, 3)`` this track's previous
        filled frame (None for its first). Returns ``(J, 3)`` float32; NaN only where no rule applies (no root)."""
        x = np.asarray(joints, dtype=np.float32)
        ok = np.asarray(ok, bool) & np.isfinite(x).all(-1)
        if ok.all():
            return x
        out = np.where(ok[:, None], x, np.nan).astype(np.float32)
        if self.policy == "mirror" and len(self.mirror) == len(x):
            self._mirror_into(out, ok)
        if self.policy in ("hold", "mirror") and prev is not None:
            gap = ~np.isfinite(out).all(-1)
            out[gap] = prev[gap]
        if self.root and len(self.mirror) in (0, len(x)):
            gap = ~np.isfinite(out).all(-1)
            if gap.any():
                r = x[list(self.root)]
                if ok[list(self.root)].all():
                    out[gap] = r.mean(0)
        return out

    def _mirror_into(self, out: np.ndarray, ok: np.ndarray) -> None:
        pairs = [(a, b) for a, b in self.lateral if ok[a] and ok[b]]
        if not pairs or not all(ok[list(self.root)]):
            return
        axis = np.sum([out[a] - out[b] for a, b in pairs], axis=0, dtype=np.float64)
        norm = np.linalg.norm(axis)
        if not np.isfinite(norm) or norm < 1e-6:
            return
        n = axis / norm  # (3,) unit left-right axis: normal of the sagittal plane
        c = out[list(self.root)].astype(np.float64).mean(0)
        twin = np.asarray(self.mirror)
        todo = np.flatnonzero(~ok & ok[twin] & (twin != np.arange(len(ok))))
        if len(todo):
            p = out[twin[todo]].astype(np.float64)  # (K, 3) the twins, seen this frame
            out[todo] = p - 2.0 * ((p - c) @ n)[:, None] * n[None, :]

    def fill(self, seq: np.ndarray, ok: np.ndarray | None = None) -> np.ndarray:
        """A whole track ``(T, J, 3)`` (``ok (T, J)``; default: finite joints), frame by frame exactly as the
        live windower fills it. Returns ``(T, J, 3)`` float32, NaN only in frames without a root."""
        seq = np.asarray(seq, dtype=np.float32)
        ok = np.isfinite(seq).all(-1) if ok is None else np.asarray(ok, bool)
        out = np.empty_like(seq)
        prev = None
        for t in range(len(seq)):
            out[t] = self.fill_frame(seq[t], ok[t], prev)
            prev = out[t]
        return out


def complete_windows(seq: np.ndarray, f: int, stride: int = 1, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`sliding_windows` of a filled track, keeping only windows without any NaN (frames without a root)."""
    w, starts = sliding_windows(seq, f, stride, offset)
    keep = np.isfinite(w).reshape(len(w), -1).all(1) if len(w) else np.zeros(0, bool)
    return w[keep], starts[keep]
