"""Shared helpers of the lifting and CASIA-B tests: synthetic walkers seen by a CASIA-like camera, written as
OpenPose BODY_25 JSON."""
from __future__ import annotations

import numpy as np
import pytest

BODY25_FROM_CASIA14 = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 9, 9: 10, 10: 11, 11: 12, 12: 13, 13: 14}


def write_openpose_walk(folder, uv14, stem="walk", drop=()):
    """Write a (T, 14, 2) pixel walk as BODY_25 OpenPose JSON (MidHip = mean of hips; face/feet missing)."""
    from pose.openpose import frame_json_name, write_frame_json

    for t, pose in enumerate(uv14):
        kp, conf = np.zeros((25, 2)), np.zeros(25)
        for c, b in BODY25_FROM_CASIA14.items():
            if c not in drop:
                kp[b], conf[b] = pose[c], 0.9
        kp[8], conf[8] = 0.5 * (pose[8] + pose[11]), 0.9
        write_frame_json(folder / frame_json_name(stem, t), [(kp, conf)])


def synthetic_view(view_deg: float, pid: int = 0, frames: int = 40, seed: int = 5):
    """A synthetic walker seen from a CASIA-like view: (uv (T,14,2) pixels, cam (T,14,3) metres)."""
    from offline import lift_library as LL

    seq = LL.synthetic_sequences(pid + 1, 1, frames, seed)[pid]
    proj = LL.project_sequences([seq], views=(view_deg,), random_cams=0)
    return proj.uv[0], proj.cam[0]


@pytest.fixture
def openpose_walk():
    """`write_openpose_walk(folder, uv14, stem, drop)`."""
    return write_openpose_walk


@pytest.fixture
def casia_view():
    """`synthetic_view(view_deg, pid, frames, seed) -> (uv (T,14,2), cam (T,14,3))`."""
    return synthetic_view
