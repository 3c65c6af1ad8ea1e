"""Window stage logic: f, stride, joint gap filling, incomplete windows, per-track state."""
import numpy as np

from stream.messages import FrameMsg
from stream.windower import Windower


def frame(track, i, joints=None, valid=None):
    j = np.full((20, 3), float(i), np.float32) if joints is None else joints
    return FrameMsg(track=track, seq=i, frame=i, t_capture=i / 30, t_pub=100.0 + i, joints=j,
                    valid=np.ones(20, bool) if valid is None else valid)


def test_emits_every_stride_once_full_and_keeps_tracks_apart():
    w = Windower(f=6, stride=3, track_timeout_s=10)
    out = [(i, w.add(frame(1, i), now=i * 0.01)) for i in range(15)]
    starts = [i for i, m in out if m is not None]
    assert starts == [5, 8, 11, 14]
    m = out[5][1]
    assert m.window.shape == (6, 20, 3) and m.window[:, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert m.t_pub == 105.0 and m.frame == 5
    assert w.add(frame(2, 0), now=0.2) is None  # a new track starts its own window


def test_missing_joints_are_filled_from_the_last_seen_position():
    w = Windower(f=3, stride=1, track_timeout_s=10)
    w.add(frame(1, 0), now=0)
    valid = np.ones(20, bool)
    valid[4] = False
    j = np.full((20, 3), 1.0, np.float32)
    j[4] = np.nan
    w.add(frame(1, 1, j, valid), now=0.01)
    m = w.add(frame(1, 2), now=0.02)
    assert m is not None and m.window[1, 4, 0] == 0.0 and m.window[1, 3, 0] == 1.0


def test_joint_never_seen_makes_windows_incomplete_and_timeout_resets():
    w = Windower(f=3, stride=1, track_timeout_s=1.0)
    valid = np.ones(20, bool)
    valid[7] = False
    j = np.zeros((20, 3), np.float32)
    assert all(w.add(frame(1, i, j, valid), now=i * 0.01) is None for i in range(5))
    assert w.incomplete == 3
    w.add(frame(1, 5), now=0.05)
    w.expire(now=5.0)
    assert 1 not in w.tracks
