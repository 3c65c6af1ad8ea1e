"""Gallery matcher: hand-computed scores for cosine/Euclidean, centroid/nearest; open-set calibration."""
import numpy as np
import pytest

from cages.matcher import Matcher, RunningMean, calibrate_threshold, running_mean

G = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]])  # (4, 2)
P = np.array([0, 1, 1, 2])  # 3 people


def test_cosine_nearest_scores_by_hand():
    m = Matcher(G, P, "cosine", "nearest")
    s = m.scores(np.array([[0.0, 2.0], [1.0, 1.0]]))
    # query 0 = (0, 1): person 0 cos 0, person 1 max(1, 0.8) = 1, person 2 cos 0
    np.testing.assert_allclose(s[0], [0.0, 1.0, 0.0], atol=1e-12)
    # query 1 = (1, 1)/sqrt2: person 0 0.7071, person 1 max(0.7071, 1.4/sqrt2=0.98995), person 2 -0.7071
    np.testing.assert_allclose(s[1], [0.70710678, 0.98994949, -0.70710678], atol=1e-8)
    r = m.match(np.array([[0.0, 2.0], [1.0, 1.0]]))
    assert r.best.tolist() == [1, 1]
    np.testing.assert_allclose(r.second_score, [0.0, 0.70710678], atol=1e-8)


def test_centroid_and_euclidean_by_hand():
    m = Matcher(G, P, "euclidean", "centroid")
    # person 1 centroid = (0.3, 0.9): distance 0 to it, |(0.7, -0.9)| to person 0, |(1.3, 0.9)| to person 2
    s = m.scores(np.array([[0.3, 0.9]]))
    np.testing.assert_allclose(s[0], [-np.hypot(0.7, 0.9), 0.0, -np.hypot(1.3, 0.9)], atol=1e-7)
    mc = Matcher(G, P, "cosine", "centroid")
    # cosine centroid of person 1: normalise((0,1) + (0.6,0.8)) = (0.3, 0.9) / |.|
    np.testing.assert_allclose(mc.scores(np.array([[0.0, 1.0]]))[0, 1], 0.9 / np.hypot(0.3, 0.9), atol=1e-12)


def test_empty_gallery_and_bad_shapes():
    m = Matcher(np.zeros((0, 2)), np.zeros(0, np.int64))
    r = m.match(np.ones((3, 2)))
    assert r.best.tolist() == [-1, -1, -1] and np.isneginf(r.best_score).all()
    with pytest.raises(ValueError):
        Matcher(G, P).scores(np.ones((2, 3)))
    with pytest.raises(ValueError):
        Matcher(G, P[:2])


def test_calibrated_threshold_separates_people_from_strangers():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16))
    emb = np.concatenate([c + 0.1 * rng.normal(size=(20, 16)) for c in centres])
    person = np.repeat(np.arange(5), 20)
    group = np.tile(np.repeat([0, 1], 10), 5)
    t = calibrate_threshold(emb, person, group)
    m = Matcher(emb, person)
    own = m.match(centres + 0.1 * rng.normal(size=(5, 16)))
    strangers = m.match(rng.normal(size=(20, 16)))
    assert (own.best_score >= t).all() and own.best.tolist() == [0, 1, 2, 3, 4]
    assert (strangers.best_score < t).mean() > 0.9
    assert calibrate_threshold(emb[:20], person[:20]) is None  # one person: nothing to calibrate on


def test_streaming_running_mean_equals_the_batch_one_over_many_laps():
    x = np.random.default_rng(0).normal(size=(50, 4))
    pool = RunningMean(7, 4)
    streamed = np.stack([pool.push(row) for row in x])
    np.testing.assert_allclose(streamed, running_mean(x, 7), atol=1e-12)


def test_one_walk_enrolments_are_calibrated_on_their_halves_not_on_themselves():
    """Everybody enrolled from one walk (the usual case: one clip per person). A person's next walk differs from
    the enrolment walk by more than the walk's own windows differ from their mean; the acceptance score must
    still accept that next walk and reject strangers. Scoring the walk against itself (the old behaviour) put
    the threshold above every new walk: the right best match was then reported as `unknown`."""
    from types import SimpleNamespace

    from cages.matcher import split_single_groups
    from stream.config import StreamConfig
    from stream.identify import calibrate

    rng = np.random.default_rng(1)
    D, n = 16, 30
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731 (a one-line helper)

    def walk(centre):  # windows drift along the walk (the view changes as the person passes) + noise
        d = unit(rng.normal(size=D)) * 4.0
        return centre + np.linspace(-0.5, 0.5, n)[:, None] * d + 0.3 * rng.normal(size=(n, D))

    centres = 4.0 * np.eye(D)[:6]  # people 4 * sqrt(2) apart
    emb = np.concatenate([walk(c) for c in centres])
    person = np.repeat(np.arange(6), n)
    data = SimpleNamespace(names=[f"p{i}" for i in range(6)], embeddings=emb, person=person,
                           session=np.repeat(np.arange(6), n))  # one enrolment session (walk) each
    groups = split_single_groups(person, data.session)
    assert [len(np.unique(groups[person == p])) for p in range(6)] == [2] * 6
    assert (groups[person == 0][:15] != groups[person == 0][15:]).all()  # earlier half, later half

    cfg = StreamConfig()
    accept = calibrate(data, cfg)
    m = Matcher(emb, person, cfg.metric, cfg.reduce)
    new_walks = np.stack([c + 3.35 * unit(rng.normal(size=D)) for c in centres])  # farther than the walk's halves
    own = m.match(new_walks)
    assert own.best.tolist() == list(range(6)) and (own.best_score >= accept).all()
    strangers = m.match(4.0 * np.eye(D)[6:12])  # people never enrolled
    assert (strangers.best_score < accept).all()
    # people with several walks keep their own groups
    two = np.r_[np.zeros(n, np.int64), np.ones(n, np.int64)]
    np.testing.assert_array_equal(split_single_groups(np.zeros(2 * n, np.int64), two), two)
