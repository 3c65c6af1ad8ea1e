"""2D -> 3D lifting: cameras, normalisation, Chen & Ramanan matching, the Martinez MLP, sequences."""
from __future__ import annotations

import numpy as np
import pytest

from pose import lifting as L


def _walker_poses(n_ids: int, seed: int, frames: int = 40) -> np.ndarray:
    """Synthetic casia14 walks (Kinect-like camera space: y up, right-handed - the library frame)."""
    from pose import synthetic

    out = []
    for ident in synthetic.make_identities(n_ids, seed=seed):
        w = synthetic.walk(ident, frames, layout="casia14", seed=seed, noise_m=0.0, heading_range=(-180, 180))
        out.append(w.joints)
    return np.concatenate(out)


@pytest.fixture(scope="module")
def library():
    return L.make_library_pairs(_walker_poses(8, seed=0), n_views=6, seed=0)


@pytest.fixture(scope="module")
def heldout():
    """Projections of other identities' walks: pixels, camera-frame truth."""
    poses = _walker_poses(3, seed=7)
    poses = poses - L.root_of(poses)[:, None]
    R, C = L.random_cameras(len(poses), np.random.default_rng(3))
    cam = L.to_camera(poses, R, C)
    uv, x2d, depth = L.pairs_from_camera(cam, 1000.0)
    return uv, x2d, depth


def test_normalisation_removes_position_and_scale():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(5, 14, 2)) * 40 + 300
    a, root, s = L.normalise_2d(p)
    b, root2, s2 = L.normalise_2d(p * 2.5 + np.array([17.0, -4.0]))
    np.testing.assert_allclose(a, b, atol=1e-12)
    np.testing.assert_allclose(s2, 2.5 * s)
    np.testing.assert_allclose(L.root_of(a), 0, atol=1e-12)
    np.testing.assert_allclose(np.sqrt((a ** 2).sum(-1).mean(-1)), 1.0)


def test_cameras_look_at_the_pelvis_and_keep_left_right():
    # a person facing +z (towards a camera at azimuth 0), y up, right-handed: their left is +x
    pose = np.zeros((14, 3))
    pose[:, 1] = np.linspace(1.6, 0.0, 14)
    pose[[5, 6, 7, 11, 12, 13], 0] = 0.2  # left side
    pose[[2, 3, 4, 8, 9, 10], 0] = -0.2  # right side
    pose -= L.root_of(pose)
    R, C = L.look_at(np.zeros((1, 3)), 0.0, 0.0, 5.0)
    cam = L.to_camera(pose[None], R, C)[0]
    uv = L.project(cam, 1000.0)
    np.testing.assert_allclose(L.root_of(uv), 0, atol=1e-9)  # the pelvis is at the principal point
    assert (cam[:, 2] > 4.5).all()  # in front of the camera
    assert uv[5, 0] > uv[2, 0]  # facing the camera: the left shoulder appears on the image's right
    assert uv[0, 1] < uv[10, 1]  # head above ankle (image y grows downwards)
    np.testing.assert_allclose(np.linalg.det(R), 1.0)


def test_matching_recovers_a_library_pose_exactly(library):
    lifter = L.MatchingLifter(library["x2d"], library["depth"], k=1, device="cpu")
    i = np.array([3, 500, 1700])
    scale, shift = 80.0, np.array([320.0, 240.0])
    pixels = library["x2d"][i].astype(np.float64) * scale + shift
    out = lifter.lift(pixels)
    np.testing.assert_allclose(out[..., :2], pixels)  # the query's own 2D joints are kept
    np.testing.assert_allclose(out[..., 2], library["depth"][i] * scale, atol=1e-3)  # depth rescaled to 2D size
    idx, d2 = lifter.nearest(library["x2d"][i], k=3)
    assert idx[:, 0].tolist() == i.tolist() and np.allclose(d2[:, 0], 0, atol=1e-4)
    assert (np.diff(d2, axis=1) >= -1e-6).all()


def _depth_error(pred, true):
    return float(np.abs(pred - true).mean())


def test_matching_beats_flat_depth_on_unseen_walkers(library, heldout):
    _, x2d, depth = heldout
    flat = _depth_error(np.zeros_like(depth), depth)
    for k in (1, 8):
        lifter = L.MatchingLifter(library["x2d"], library["depth"], k=k, device="cpu", chunk=97)
        err = _depth_error(lifter.lift_normalised(x2d), depth)
        assert err < 0.6 * flat, (k, err, flat)


def test_mlp_learns_depth_and_round_trips(library, heldout, tmp_path):
    _, x2d, depth = heldout
    lifter, hist = L.train_mlp(library["x2d"], library["depth"], L.MLPConfig(width=64, blocks=1, dropout=0.0),
                               epochs=3, batch=128, seed=0, device="cpu", val=(x2d, depth))
    assert hist[-1]["train_l1"] < hist[0]["train_l1"]
    pred = lifter.lift_normalised(x2d)
    assert _depth_error(pred, depth) < 0.6 * _depth_error(np.zeros_like(depth), depth)
    path = tmp_path / "mlp.pt"
    lifter.save(path)
    again = L.load_lifter(path, device="cpu")
    assert isinstance(again, L.MLPLifter)
    np.testing.assert_allclose(again.lift_normalised(x2d[:50]), pred[:50], atol=1e-5)


def test_matching_library_save_load(library, tmp_path):
    lifter = L.MatchingLifter(library["x2d"][:300], library["depth"][:300], k=2, device="cpu")
    lifter.save(tmp_path / "lib.npz")
    again = L.load_lifter(tmp_path / "lib.npz")
    assert isinstance(again, L.MatchingLifter) and again.k == 2 and again.size == 300
    q = library["x2d"][:20]
    np.testing.assert_allclose(again.lift_normalised(q), lifter.lift_normalised(q))
    with pytest.raises(L.LiftError, match="not found"):
        L.load_lifter(tmp_path / "missing.npz")


def test_fill_missing_interpolates_and_uses_the_other_side():
    T = 10
    seq = np.zeros((T, 14, 2))
    seq[..., 0] = np.arange(T)[:, None] * 2.0 + np.arange(14)[None]
    seq[..., 1] = 100.0 + np.arange(14)[None] * 10
    gappy = seq.copy()
    gappy[3:6, 9] = np.nan  # R-knee missing three frames
    gappy[:, 4] = np.nan  # R-wrist never seen -> copies L-wrist (7)
    out = L.fill_missing_2d(gappy)
    np.testing.assert_allclose(out[3:6, 9], seq[3:6, 9])  # linear motion: interpolation is exact
    np.testing.assert_allclose(out[:, 4], seq[:, 7])
    bad = seq.copy()
    bad[:, [8, 11]] = np.nan
    with pytest.raises(L.LiftError, match="R-hip|r_hip"):
        L.fill_missing_2d(bad)


def test_lift_sequence_with_smoothing_reduces_jitter(library, heldout):
    uv, _, _ = heldout
    seq = uv[:40]  # one walk of 40 frames
    rng = np.random.default_rng(0)
    noisy = seq + rng.normal(0, 2.0, seq.shape)
    lifter = L.MatchingLifter(library["x2d"], library["depth"], k=4, device="cpu")
    raw = lifter.lift_sequence(noisy)
    smooth = lifter.lift_sequence(noisy, smooth_sigma=2.0)
    assert raw.shape == smooth.shape == (40, 14, 3)
    jitter = lambda z: float(np.abs(np.diff(z[..., 2], axis=0)).mean())  # noqa: E731
    assert jitter(smooth) < 0.7 * jitter(raw)
    with pytest.raises(L.LiftError, match="NaN"):
        lifter.lift(np.full((1, 14, 2), np.nan))


def test_smooth_sequence_keeps_constants_and_linear_trends():
    x = np.ones((30, 14)) * 3.0
    np.testing.assert_allclose(L.smooth_sequence(x, 2.0), x)
    lin = np.linspace(0, 1, 30)[:, None] * np.ones((1, 4))
    np.testing.assert_allclose(L.smooth_sequence(lin, 1.5)[8:-8], lin[8:-8], atol=1e-9)
    np.testing.assert_array_equal(L.smooth_sequence(x, 0), x)
