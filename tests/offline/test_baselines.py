"""Baselines on a tiny hand-made walker set: body proportions must identify people wherever they stand."""
import numpy as np
import pytest

from offline.baselines import BASELINES, D13Descriptor, RawCoords, make_baseline
from offline.metrics import pairwise_distance, rank_metrics

BONES = [(0, 1), (1, 2), (0, 3), (3, 4), (0, 5), (5, 6)]  # a 7-joint stick figure rooted at joint 0


def walkers(n_people=4, n_windows=6, f=5, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(123).normal(size=(n_people, 7, 3)) * 0.3  # stable per person
    out, pids = [], []
    for p in range(n_people):
        for k in range(n_windows):
            t = np.arange(f)[:, None, None]
            swing = 0.05 * np.sin(0.8 * t + k) * np.array([0, 0, 1.0])
            w = base[p][None] + swing + rng.normal(scale=0.01, size=(f, 7, 3))
            w = w + np.array([shift + rng.uniform(-2, 2), 0.0, rng.uniform(1, 4)])  # spot on the walkway
            out.append(w)
            pids.append(p)
    return np.array(out), np.array(pids)


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_identifies_people_anywhere_on_the_walkway(name):
    g, gp = walkers(seed=0)
    p, pp = walkers(seed=1, shift=3.0)
    model = make_baseline(name, "no-such-layout", 7)
    model.fit(g)
    eg, ep = model.embed(g), model.embed(p)
    assert eg.shape[0] == len(g) and ep.shape == (len(p), eg.shape[1])
    m = rank_metrics(pairwise_distance(ep, eg), pp, gp)
    assert m["rank1"] == 1.0


def test_raw_is_root_centred_and_gallery_zscored():
    g, _ = walkers()
    raw = RawCoords(root=0).fit(g)
    e = raw.embed(g)
    assert np.allclose(e.reshape(len(g), 5, 7, 3)[:, :, 0], 0.0)  # the root is the origin -> constant 0
    assert np.allclose(e.mean(0), 0.0, atol=1e-9)
    moved = raw.embed(g + np.array([5.0, 1.0, -2.0]))
    assert np.allclose(moved, e)


def test_d13_uses_bones_and_needs_fit():
    g, _ = walkers()
    d13 = D13Descriptor(root=0, bones=BONES)
    with pytest.raises(RuntimeError):
        d13.embed(g)
    x = d13.features(g)
    ends = 3  # joints 2, 4, 6 are in one bone each
    assert x.shape == (len(g), len(BONES) + 3 + 2 * ends)
    lengths = np.linalg.norm(g[0, :, 0] - g[0, :, 1], axis=-1)
    assert x[0, 0] == pytest.approx(np.median(lengths))
    # NaN joints (missing) never crash and contribute 0 after z-scoring
    h = g.copy()
    h[:, :, 6] = np.nan
    assert np.isfinite(d13.fit(g).embed(h)).all()


def test_unknown_baseline_name():
    with pytest.raises(ValueError):
        make_baseline("lda", "kinect_v1", 20)
