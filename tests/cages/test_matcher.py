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


# --- walk-level matching ---------------------------------------------------------------------------------------
def test_smooth_gallery_pulls_windows_to_their_walk_mean():
    from cages.matcher import smooth_gallery

    x = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0]])
    walk = np.array([7, 7, 3])
    np.testing.assert_allclose(smooth_gallery(x, walk, 1.0), x)
    np.testing.assert_allclose(smooth_gallery(x, walk, 0.0), [[1.0, 0.0], [1.0, 0.0], [10.0, 10.0]])
    np.testing.assert_allclose(smooth_gallery(x, walk, 0.5), [[0.5, 0.0], [1.5, 0.0], [10.0, 10.0]])
    with pytest.raises(ValueError):
        smooth_gallery(x, walk, 1.5)


def test_nearest_distance_pool_by_hand():
    from cages.matcher import nearest_distance_pool

    # 3 query windows (walks 5, 5, 6) x 4 reference windows (groups 0, 0, 1, 1)
    d = np.array([[1.0, 3.0, 2.0, 9.0],
                  [4.0, 0.5, 8.0, 1.0],
                  [7.0, 6.0, 0.0, 2.0]])
    qw, rg, pooled = nearest_distance_pool(d, np.array([5, 5, 6]), np.array([0, 0, 1, 1]))
    assert qw.tolist() == [5, 6] and rg.tolist() == [0, 1]
    # walk 5: nearest of group 0 = 1 and 0.5 -> 0.75; of group 1 = 2 and 1 -> 1.5.  walk 6: 6 and 0
    np.testing.assert_allclose(pooled, [[0.75, 1.5], [6.0, 0.0]])


def test_nearest_pool_beats_mean_when_a_walk_is_seen_at_other_gait_phases():
    """Two people whose windows trace the same loop (gait phases) at different body offsets: the probe walk
    covers only half of the cycle, so its mean sits away from its own gallery mean; matching every window to its
    nearest gallery window finds the right person."""
    from cages.matcher import nearest_distance_pool

    phase = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    loop = 3.0 * np.stack([np.cos(phase), np.sin(phase)], 1)
    gallery = np.vstack([loop, loop + [0.0, 1.5]])  # person 0 and person 1 (one walk each)
    g_walk = np.repeat([0, 1], 24)
    probe = loop[:12] + 0.05  # person 0, first half of the cycle only
    d = np.linalg.norm(probe[:, None] - gallery[None], axis=-1)
    _, _, nearest = nearest_distance_pool(d, np.zeros(12, int), g_walk)
    assert nearest[0].argmin() == 0
    means = np.stack([gallery[g_walk == k].mean(0) for k in (0, 1)])
    assert np.linalg.norm(probe.mean(0) - means, axis=1).argmin() == 1  # the walk means get it wrong


def test_pool_scores_is_the_live_form_of_the_nearest_pool():
    from cages.matcher import Matcher, nearest_distance_pool, pool_scores

    rng = np.random.default_rng(0)
    gallery, person = rng.normal(size=(10, 3)), np.repeat([0, 1], 5)
    queries = rng.normal(size=(6, 3))
    live = pool_scores(Matcher(gallery, person, "euclidean", "nearest").scores(queries), k=6)
    d = np.linalg.norm(queries[:, None] - gallery[None], axis=-1)
    _, _, offline = nearest_distance_pool(d, np.zeros(6, int), person)
    np.testing.assert_allclose(live[-1], -offline[0])  # the last row pools all six windows
    s = np.array([[1.0, -np.inf], [3.0, -np.inf]])
    np.testing.assert_allclose(pool_scores(s, 2), [[1.0, -np.inf], [2.0, -np.inf]])


def test_k_reciprocal_reranking_uses_shared_neighbours():
    from cages.matcher import k_reciprocal_distance

    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    gallery = np.vstack([c + rng.normal(scale=0.5, size=(6, 2)) for c in centres])
    g_pid = np.repeat([0, 1, 2], 6)
    query = np.vstack([c + rng.normal(scale=0.5, size=(4, 2)) for c in centres])
    q_pid = np.repeat([0, 1, 2], 4)
    d = k_reciprocal_distance(query, gallery, k1=5, k2=2)
    assert d.shape == (12, 18) and np.isfinite(d).all() and (d >= 0).all()
    assert (g_pid[d.argmin(1)] == q_pid).all()
    # lambda 1 = the original distances: squared, each column divided by its maximum over queries and gallery
    d1 = k_reciprocal_distance(query, gallery, lambda_value=1.0)
    both = np.vstack([query, gallery])
    sq = ((both[:, None] - both[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d1, (sq / sq.max(0))[:12, 12:], atol=1e-12)
