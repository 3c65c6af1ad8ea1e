"""One-Euro smoothing and short-gap filling: flags are explicit and nothing is invented."""
import numpy as np

from pose.smoothing import OneEuroFilter, fill_gaps, gap_runs


def test_one_euro_removes_jitter_at_rest_and_follows_a_step():
    rng = np.random.default_rng(0)
    t = np.arange(120) / 30.0
    truth = np.where(t < 2.0, 0.0, 1.0)[:, None] * np.ones(3)   # (T, 3): still, then a 1 m jump, then still
    noisy = truth + rng.normal(0, 0.01, truth.shape)
    f = OneEuroFilter(min_cutoff=1.0, beta=1.0)
    out = np.array([f(x, ti) for x, ti in zip(noisy, t)])
    still = (t > 0.5) & (t < 2.0)
    assert np.abs(out[still] - truth[still]).std() < 0.5 * np.abs(noisy[still] - truth[still]).std()
    # the jump is followed within 0.3 s (the speed term opens the filter)
    after = (t >= 2.3)
    assert np.abs(out[after] - 1.0).max() < 0.05


def test_one_euro_nan_stays_nan_and_resets_after_long_gap():
    f = OneEuroFilter()
    f(np.array([0.0, 0.0]), 0.0)
    out = f(np.array([np.nan, 1.0]), 0.033)
    assert np.isnan(out[0]) and np.isfinite(out[1])
    # after a gap longer than reset_after the first value passes through unsmoothed
    out = f(np.array([5.0, 5.0]), 2.0)
    assert np.allclose(out, 5.0)


def test_gap_runs_only_interior():
    found = np.array([0, 1, 1, 0, 0, 1, 0, 1, 0], bool)
    assert gap_runs(found) == [(3, 5), (6, 7)]


def test_fill_gaps_interpolates_short_gaps_and_flags_them():
    T = 12
    values = np.arange(T, dtype=float)[:, None] * np.array([1.0, 2.0])  # (T, 2)
    found = np.ones(T, bool)
    found[[3, 4]] = False       # short gap: filled
    found[6:10] = False         # 4 frames: longer than max_gap=3 -> left NaN
    found[0] = False            # before the first detection: never filled
    v = values.copy()
    v[~found] = np.nan
    out, filled = fill_gaps(v, found, max_gap=3)
    assert filled.tolist() == [i in (3, 4) for i in range(T)]
    assert np.allclose(out[3:5], values[3:5])
    assert np.isnan(out[6:10]).all() and np.isnan(out[0]).all()
    assert np.array_equal(out[found], values[found])


def test_fill_gaps_uses_timestamps():
    v = np.array([[0.0], [np.nan], [3.0]])
    out, filled = fill_gaps(v, np.array([True, False, True]), timestamps=np.array([0.0, 2.0, 3.0]))
    assert filled[1] and np.isclose(out[1, 0], 2.0)
