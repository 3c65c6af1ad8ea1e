"""Missing-joint policy (`cages.windows.MissingJoints`): hand-computed fills, the fallbacks, offline == live."""
import numpy as np
import pytest

from cages.windows import MissingJoints, complete_windows
from pose.layouts import get_layout

K1 = get_layout("kinect_v1")
J = {n: i for i, n in enumerate(K1.joints)}


def body() -> np.ndarray:
    """A kinect_v1 skeleton facing the camera: left side at -x, right side at +x, root at the origin."""
    x = np.zeros((20, 3), np.float32)
    for name, i in J.items():
        side = -1.0 if name.endswith("Left") else (1.0 if name.endswith("Right") else 0.0)
        k = J[name.replace("Right", "Left")]  # twins share height and depth, a little asymmetric in x
        x[i] = [side * (0.1 + 0.01 * k) + 0.003 * i, 1.0 - 0.05 * k, 0.02 * k]
    x[J["HipCenter"]] = 0.0
    x[[J["HipLeft"], J["HipRight"]], 0] = [-0.1, 0.1]  # a symmetric trunk: the sagittal plane is x = 0
    x[[J["ShoulderLeft"], J["ShoulderRight"]], 0] = [-0.2, 0.2]
    return x


def test_mirror_reflects_the_twin_about_the_sagittal_plane():
    x = body()
    ok = np.ones(20, bool)
    ok[J["WristLeft"]] = False
    out = MissingJoints.for_layout(K1, "mirror").fill_frame(np.where(ok[:, None], x, np.nan), ok)
    r = x[J["WristRight"]]
    # hips and shoulders at +-x: the sagittal plane is x = 0 through the root; only x changes sign
    assert out[J["WristLeft"]].tolist() == pytest.approx([-r[0], r[1], r[2]])
    assert np.array_equal(out[ok], x[ok])  # seen joints are untouched


def test_mirror_follows_a_turned_body():
    """A body walking sideways (left-right axis along z): the reflection is about the plane z = root z."""
    x = body()[:, [2, 1, 0]]  # swap x and z: the left-right axis is now z
    ok = np.ones(20, bool)
    ok[[J["ElbowRight"], J["WristRight"], J["HandRight"]]] = False
    out = MissingJoints.for_layout(K1, "mirror").fill_frame(x, ok)
    for n in ("Elbow", "Wrist", "Hand"):
        twin = x[J[n + "Left"]]
        assert out[J[n + "Right"]].tolist() == pytest.approx([twin[0], twin[1], -twin[2]])


def test_hold_then_root_when_there_is_no_twin():
    x = body()
    ok = np.ones(20, bool)
    ok[[J["HandLeft"], J["HandRight"]]] = False  # both twins missing: mirror cannot help
    m = MissingJoints.for_layout(K1, "mirror")
    first = m.fill_frame(x, ok, prev=None)
    assert first[J["HandLeft"]].tolist() == x[J["HipCenter"]].tolist()  # never seen: the root
    prev = x.copy()
    prev[J["HandLeft"]] = [5.0, 5.0, 5.0]
    assert m.fill_frame(x, ok, prev=prev)[J["HandLeft"]].tolist() == [5.0, 5.0, 5.0]  # last filled position


def test_root_policy_and_no_root_no_skeleton():
    x = body()
    ok = np.ones(20, bool)
    ok[J["WristLeft"]] = False
    out = MissingJoints.for_layout(K1, "root").fill_frame(x, ok, prev=x + 1)
    assert out[J["WristLeft"]].tolist() == x[J["HipCenter"]].tolist()
    ok[J["HipCenter"]] = False
    assert np.isnan(MissingJoints.for_layout(K1, "root").fill_frame(x, ok)[J["WristLeft"]]).all()
    with pytest.raises(ValueError, match="unknown missing-joint policy"):
        MissingJoints(policy="zeros")


def test_offline_fill_is_the_live_windower_fill():
    """`fill` over a track gives exactly the frames the live windower keeps (one rule, train/serve alike)."""
    from stream.messages import FrameMsg
    from stream.windower import Windower

    rng = np.random.default_rng(0)
    seq = body()[None] + rng.normal(0, 0.02, (40, 20, 3)).astype(np.float32)
    ok = rng.random((40, 20)) > 0.3
    ok[:, J["HipCenter"]] = True
    ok[:, [J["HipLeft"], J["HipRight"]]] = True
    offline, _ = complete_windows(MissingJoints.for_layout(K1).fill(seq, ok), f=6, stride=3)
    w = Windower(f=6, stride=3, track_timeout_s=10, layout="kinect_v1")
    live = []
    for t in range(40):
        live += w.add(FrameMsg(seq=t, frame=t, t_capture=t / 30, t_pub=0.0, tracks=[1],
                               joints=np.where(ok[t, :, None], seq[t], np.nan)[None], valid=ok[t][None]), now=t)
    assert len(live) == len(offline) == 12
    assert np.array_equal(np.stack([m.window for m in live]), offline)


def test_warped_windows_play_the_walk_slower_or_quicker():
    from cages.windows import sliding_windows, warped_windows

    t = np.arange(20, dtype=float)
    seq = np.stack([t, 2 * t, -t], axis=-1)[:, None, :]  # (20, 1, 3): a joint moving at constant speed
    same, s1 = warped_windows(seq, 6, 1.0, stride=2)
    ref, s2 = sliding_windows(seq, 6, stride=2)
    np.testing.assert_allclose(same, ref)
    np.testing.assert_array_equal(s1, s2)
    slow, starts = warped_windows(seq, 6, 0.5)
    assert slow.shape == (17, 6, 1, 3) and starts[-1] == 16  # the last window ends at frame 16 + 2.5
    np.testing.assert_allclose(np.diff(slow[:, :, 0, 0], axis=1), 0.5)  # half the distance per frame
    np.testing.assert_allclose(slow[:, 0, 0, 0], starts)
    quick, starts = warped_windows(seq, 6, 2.0)
    assert quick.shape == (10, 6, 1, 3) and quick[-1, -1, 0, 0] == 19
    assert warped_windows(seq[:3], 6, 1.0)[0].shape == (0, 6, 1, 3)
    with pytest.raises(ValueError, match="rate"):
        warped_windows(seq, 6, 0.0)
