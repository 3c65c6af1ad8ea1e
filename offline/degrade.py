"""Degrade clean 3D skeletons (Kinect) to look like monocular MediaPipe output: the UCalgary proxy of issue #14.

What monocular 3D pose gets wrong, as measured on the real side-view clips in ``../shared/data/video/ucb_recognition``
(``cagereid extract``, kinect_v1 joints with MediaPipe visibility >= 0.5): the far arm (elbow, wrist, hand) is
missing in 70-100 % of the frames (100 % in the 90° side view), the far knee in ~15 % and the far ankle/foot in
~10 %; landmarks carry no absolute position (hip-centred world landmarks) and their depth is the noisiest axis.

`monocular_like` imitates that: the track is hip-centred, every joint gets jitter and extra depth noise, the
far arm is hidden for the whole walk and the far leg's lower joints in short bursts. Units: metres;
shapes ``(T, J, 3)``; layouts with Kinect joint names (``kinect_v1``, ``kinect_v2``, ``common``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Degradation:
    depth_noise: float = 0.03  # metres, std of per-joint, per-frame noise on z (the camera axis)
    jitter: float = 0.01  # metres, std of per-joint, per-frame noise on every axis
    far_arm: float = 1.0  # fraction of frames the far elbow/wrist/hand are hidden (1 = profile: whole walk)
    far_leg: float = 0.15  # fraction of frames the far knee/ankle/foot are hidden, in bursts
    burst: int = 8  # mean burst length in frames


def monocular_like(joints: np.ndarray, layout, rng: np.random.Generator, far_side: str | None = None,
                   d: Degradation = Degradation()) -> tuple[np.ndarray, np.ndarray]:
    """``joints (T, J, 3)`` of ``layout`` (a `pose.layouts.Layout`) -> ``(joints, valid (T, J))``, hidden joints NaN.

    ``far_side`` ``'Left'`` or ``'Right'`` (default: drawn from ``rng``; ``'depth'``: the side whose elbow is
    farther from the camera on average) is the side turned away from the camera.
    """
    x = np.array(joints, dtype=np.float64, copy=True)
    T, J, _ = x.shape
    x -= x[:, list(layout.root_joints)].mean(1, keepdims=True)  # hip-centred, like MediaPipe world landmarks
    x += rng.normal(0.0, d.jitter, x.shape)
    x[..., 2] += rng.normal(0.0, d.depth_noise, (T, J))
    if far_side == "depth":
        z = {sd: np.nanmean(joints[:, layout.joints.index("Elbow" + sd), 2]) for sd in ("Left", "Right")}
        far_side = max(z, key=z.get)
    side = far_side or ("Left" if rng.random() < 0.5 else "Right")
    valid = np.ones((T, J), bool)
    names = layout.joints
    arm = [i for i, n in enumerate(names) if n.endswith(side) and n[: -len(side)] in ("Elbow", "Wrist", "Hand")]
    leg = [i for i, n in enumerate(names) if n.endswith(side) and n[: -len(side)] in ("Knee", "Ankle", "Foot")]
    valid[:, arm] &= ~_bursts(T, d.far_arm, d.burst, rng)[:, None]
    valid[:, leg] &= ~_bursts(T, d.far_leg, d.burst, rng)[:, None]
    x[~valid] = np.nan
    return x, valid


def _bursts(T: int, fraction: float, burst: int, rng: np.random.Generator) -> np.ndarray:
    """``(T,)`` bool: about ``fraction`` of the frames, in runs of about ``burst`` frames."""
    if fraction >= 1.0:
        return np.ones(T, bool)
    out = np.zeros(T, bool)
    if fraction <= 0.0:
        return out
    n = max(1, int(round(fraction * T / burst)))
    for s in rng.integers(0, T, n):
        out[s:s + max(1, int(rng.integers(burst // 2, burst + burst // 2 + 1)))] = True
    return out


def monocular_filled(joints: np.ndarray, layout, rng: np.random.Generator, d: Degradation = Degradation(),
                     policy: str | None = None) -> np.ndarray:
    """`monocular_like` (far side by depth), then the missing joints filled by `cages.windows.MissingJoints`, as
    live windows are: training data for an encoder of the live domain (``cagereid synth --monocular``)."""
    from cages.windows import DEFAULT_POLICY, MissingJoints

    x, valid = monocular_like(joints, layout, rng, "depth", d)
    return MissingJoints.for_layout(layout, policy or DEFAULT_POLICY).fill(x, valid).astype(np.float64)
