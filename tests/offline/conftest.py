"""Shared helpers of the offline tests: synthetic walkers seen by a CASIA-like camera, written as OpenPose
BODY_25 JSON (lifting, CASIA-B), and as tracks files of `cagereid extract` (video manifests, train --tracks)."""
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


def write_tracks_file(path, pid: int = 0, frames: int = 60, hide_left_arm: bool = False):
    """A small tracks file as `cagereid extract` writes it: one synthetic walker's MediaPipe landmarks."""
    from pose import synthetic
    from pose.extract import ExtractResult, TrackSequence, convert_world, save_tracks

    r = synthetic.walk(synthetic.make_identities(pid + 1)[pid], frames, "mediapipe33", seed=pid)
    world = np.nan_to_num(np.asarray(r.joints, np.float64))
    vis = np.ones((frames, 33))
    if hide_left_arm:
        vis[:, [13, 15, 17, 19, 21]] = 0.1  # low visibility: MediaPipe's guess, below the 0.5 threshold
    tr = TrackSequence(1, np.arange(frames), np.arange(frames) / 30, np.ones(frames, bool), np.zeros(frames, bool),
                       world, np.zeros((frames, 33, 2)), vis, np.zeros((frames, 4)), np.zeros((frames, 3)))
    tr.joints["kinect_v1"], tr.valid["kinect_v1"] = convert_world(world, vis, "kinect_v1")
    res = ExtractResult(str(path), "video", 30.0, (640, 480), frames, ("kinect_v1",), [tr])
    save_tracks(path, res)
    return path


@pytest.fixture
def tracks_file():
    """`tracks_file(path, pid, frames, hide_left_arm)`: write a one-track tracks file of a synthetic walker."""
    return write_tracks_file
