"""Window stage logic: f, stride, joint gap filling, incomplete windows, per-track state."""
import numpy as np
import pytest

from stream.messages import FrameMsg
from stream.windower import Windower


def frame(track, i, joints=None, valid=None):
    j = np.full((20, 3), float(i), np.float32) if joints is None else joints
    return FrameMsg(seq=i, frame=i, t_capture=i / 30, t_pub=100.0 + i, tracks=[track], joints=j[None],
                    valid=(np.ones(20, bool) if valid is None else valid)[None])


def one(windows):
    """The single window a one-track frame completed, or None."""
    assert len(windows) <= 1
    return windows[0] if windows else None


def test_emits_every_stride_once_full_and_keeps_tracks_apart():
    w = Windower(f=6, stride=3, track_timeout_s=10)
    out = [(i, one(w.add(frame(1, i), now=i * 0.01))) for i in range(15)]
    starts = [i for i, m in out if m is not None]
    assert starts == [5, 8, 11, 14]
    m = out[5][1]
    assert m.window.shape == (6, 20, 3) and m.window[:, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert m.t_pub == 105.0 and m.frame == 5
    assert w.add(frame(2, 0), now=0.2) == []  # a new track starts its own window


def test_missing_joints_are_filled_from_the_last_seen_position():
    w = Windower(f=3, stride=1, track_timeout_s=10)
    w.add(frame(1, 0), now=0)
    valid = np.ones(20, bool)
    valid[4] = False
    j = np.full((20, 3), 1.0, np.float32)
    j[4] = np.nan
    w.add(frame(1, 1, j, valid), now=0.01)
    m = one(w.add(frame(1, 2), now=0.02))
    assert m is not None and m.window[1, 4, 0] == 0.0 and m.window[1, 3, 0] == 1.0


def test_joint_never_seen_makes_windows_incomplete_and_timeout_resets():
    w = Windower(f=3, stride=1, track_timeout_s=1.0)
    valid = np.ones(20, bool)
    valid[7] = False
    j = np.zeros((20, 3), np.float32)
    assert all(w.add(frame(1, i, j, valid), now=i * 0.01) == [] for i in range(5))
    assert w.incomplete == 3
    w.add(frame(1, 5), now=0.05)
    w.expire(now=5.0)
    assert ("", 1) not in w.tracks


def test_a_frame_with_another_joint_count_is_refused_and_changes_nothing():
    from stream.messages import MessageError

    w = Windower(f=3, stride=1, track_timeout_s=10)
    w.add(frame(1, 0), now=0)
    odd = FrameMsg(seq=1, frame=1, t_capture=0.0, t_pub=0.0, tracks=[1], joints=np.zeros((1, 7, 3), np.float32))
    with pytest.raises(MessageError):
        w.add(odd, now=0.01)
    assert len(w.tracks[("", 1)].frames) == 1


def test_one_source_frame_of_many_tracks_gives_their_windows_together():
    """All tracks of a camera frame arrive in one message; the windows they complete leave in one message."""
    from stream.messages import WindowMsg, decode

    w = Windower(f=4, stride=2, track_timeout_s=10)
    tracks = [3, 8, 11]
    for i in range(6):
        j = np.stack([np.full((20, 3), 10.0 * t + i, np.float32) for t in tracks])
        valid = np.ones((3, 20), bool)
        valid[1, 5] = i != 4  # track 8 loses joint 5 in frame 4: filled from frame 3
        out = w.add(FrameMsg(seq=i, frame=i, t_capture=i / 30, t_pub=50.0 + i, tracks=tracks, joints=j,
                             valid=valid, labels=["a", "b", "c"]), now=i * 0.03)
        assert len(out) == (3 if i in (3, 5) else 0)
    msg = decode(WindowMsg.of(out).to_frames())
    assert msg.tracks == tracks and msg.labels == ["a", "b", "c"] and msg.frame == 5 and msg.t_pub == 55.0
    assert msg.windows.shape == (3, 4, 20, 3)
    assert msg.windows[1, :, 5, 0].tolist() == [82.0, 83.0, 83.0, 85.0]
    assert [x.track for x in msg.items()] == tracks and msg.items()[2].window[0, 0, 0] == 112.0


def test_the_joint_count_comes_from_the_model_not_from_the_first_frame():
    """A 7-joint frame sent before the real stream used to fix the joint count and make every real frame
    malformed (0 decisions). With the model's J, the odd frame is the one refused."""
    from stream.messages import MessageError

    w = Windower(f=3, stride=1, track_timeout_s=10, J=20)
    odd = FrameMsg(seq=0, frame=0, t_capture=0.0, t_pub=0.0, tracks=[99], joints=np.zeros((1, 7, 3), np.float32))
    with pytest.raises(MessageError):
        w.add(odd, now=0.0)
    for i in range(3):
        w.add(frame(1, i), now=0.01 * i)
    assert len(w.tracks[("", 1)].frames) == 3 and ("", 99) not in w.tracks


def test_with_the_layout_a_joint_never_seen_is_filled_and_only_a_missing_root_breaks_windows():
    """The live windower fills by the model's layout (`cages.windows.MissingJoints`): a hand never seen still
    gives complete windows; frames without a root (HipCenter) cannot be filled."""
    w = Windower(f=3, stride=1, track_timeout_s=10, layout="kinect_v1")
    valid = np.ones(20, bool)
    valid[7] = False  # HandLeft, never seen
    j = np.random.default_rng(0).normal(0, 0.3, (20, 3)).astype(np.float32)
    j[7] = np.nan
    out = [one(w.add(frame(1, i, j, valid), now=i * 0.01)) for i in range(4)]
    assert [m is not None for m in out] == [False, False, True, True]
    assert np.isfinite(out[2].window).all()
    valid[0] = False  # no root from now on
    j[0] = np.nan
    w2 = Windower(f=3, stride=1, track_timeout_s=10, layout="kinect_v1")
    assert all(w2.add(frame(1, i, j, valid), now=i * 0.01) == [] for i in range(5))
    assert w2.incomplete == 3
