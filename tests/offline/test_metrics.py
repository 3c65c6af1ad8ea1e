"""Hand-computed 3-probe x 4-gallery cases for offline.metrics (see the module docstring for the rules)."""
import numpy as np
import pytest

from offline.metrics import pairwise_distance, rank_metrics, roc_auc, score_metrics

GALLERY = np.array([1, 2, 3, 1])
PROBES = np.array([1, 2, 3])


def test_perfect_ranking():
    d = np.array([[0.1, 0.5, 0.6, 0.2],
                  [0.5, 0.1, 0.6, 0.7],
                  [0.5, 0.6, 0.1, 0.7]])
    m = rank_metrics(d, PROBES, GALLERY, max_rank=4)
    assert m["cmc"] == [1.0, 1.0, 1.0, 1.0]
    assert m["rank1"] == 1.0 and m["mAP"] == 1.0
    assert m["n_probes"] == 3 and m["n_unmatched"] == 0


def test_one_swap():
    # probe 1: ranked pids 1,2,3,1 -> AP = (1/1 + 2/4) / 2 = 0.75
    # probe 2: ranked pids 1,2,... -> first hit at rank 2, AP = 1/2
    d = np.array([[0.1, 0.5, 0.6, 0.9],
                  [0.2, 0.3, 0.6, 0.7],
                  [0.5, 0.6, 0.1, 0.7]])
    m = rank_metrics(d, PROBES, GALLERY, max_rank=4)
    assert m["cmc"] == pytest.approx([2 / 3, 1, 1, 1])
    assert m["ap"] == pytest.approx([0.75, 0.5, 1.0])
    assert m["mAP"] == pytest.approx(0.75)


def test_tie_is_broken_by_gallery_order():
    # probe 2 is at equal distance from gallery item 0 (pid 1) and item 1 (pid 2): item 0 ranks first
    d = np.array([[0.1, 0.5, 0.6, 0.2],
                  [0.3, 0.3, 0.6, 0.7],
                  [0.5, 0.6, 0.1, 0.7]])
    m = rank_metrics(d, PROBES, GALLERY, max_rank=4)
    assert m["rank1"] == pytest.approx(2 / 3)
    # the same tie with the gallery order reversed puts the true match first
    m2 = rank_metrics(d[:, ::-1], PROBES, GALLERY[::-1], max_rank=4)
    assert m2["rank1"] == 1.0


def test_probe_missing_from_gallery_is_excluded_and_counted():
    d = np.array([[0.1, 0.5, 0.6, 0.2],
                  [0.5, 0.1, 0.6, 0.7],
                  [0.5, 0.6, 0.1, 0.7]])
    m = rank_metrics(d, np.array([1, 2, 9]), GALLERY, max_rank=4)
    assert m["n_probes"] == 2 and m["n_unmatched"] == 1
    assert m["rank1"] == 1.0 and m["mAP"] == 1.0
    assert m["matched"].tolist() == [True, True, False]


def test_single_gallery_item():
    d = np.array([[0.4], [0.1], [0.9]])
    m = rank_metrics(d, np.array([1, 2, 1]), np.array([1]), max_rank=5)
    assert m["n_probes"] == 2 and m["n_unmatched"] == 1
    assert m["cmc"] == [1.0] * 5 and m["mAP"] == 1.0


def test_exclude_skips_the_query_itself():
    # probe set == gallery set: without exclusion every probe matches itself at distance 0
    x = np.array([[0.0], [1.0], [0.2], [5.0], [10.0]])
    pids = np.array([1, 2, 1, 2, 3])
    d = pairwise_distance(x, x)
    assert rank_metrics(d, pids, pids, max_rank=3)["rank1"] == 1.0
    m = rank_metrics(d, pids, pids, max_rank=3, exclude=np.eye(5, dtype=bool))
    # pid 3 has only itself -> unmatched; probe x=1 (pid 2) ranks 0.2, 0 (pid 1) before 5 (pid 2) -> rank 3
    assert m["n_unmatched"] == 1 and m["n_probes"] == 4
    assert m["cmc"] == pytest.approx([3 / 4, 3 / 4, 1.0])


def test_distances():
    a = np.array([[3.0, 4.0], [1.0, 0.0]])
    b = np.array([[0.0, 0.0], [2.0, 0.0]])
    assert pairwise_distance(a, b) == pytest.approx(np.array([[5.0, np.sqrt(17)], [1.0, 1.0]]))
    assert pairwise_distance(a, b[1:], "cosine") == pytest.approx(np.array([[0.4], [0.0]]))
    with pytest.raises(ValueError):
        pairwise_distance(a, b, "manhattan")


def test_score_metrics_hand_computed():
    classes = np.array([10, 20, 30, 40])
    scores = np.array([[4.0, 3, 2, 1],
                       [4.0, 3, 2, 1],   # true class 20 ranked second
                       [1.0, 2, 4, 3]])
    m = score_metrics(scores, np.array([10, 20, 30]), classes)
    assert m["cmc"] == pytest.approx([2 / 3, 1, 1, 1])
    assert m["nAUC_cmc"] == pytest.approx((2 / 3 + 3) / 4)
    # positives 4, 3, 4 against negatives 3,2,1,4,2,1,1,2,3: (8.5 + 7 + 8.5) / 27
    assert m["nAUC_roc"] == pytest.approx(24 / 27)
    assert m["confusion"].tolist() == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_score_metrics_unknown_label_excluded():
    m = score_metrics(np.eye(3), np.array([0, 1, 7]))
    assert m["n_probes"] == 2 and m["n_unmatched"] == 1 and m["rank1"] == 1.0


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    t = rng.random(60) < 0.3
    s = np.round(rng.normal(size=60), 1)  # rounding creates ties
    pos, neg = s[t], s[~t]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert roc_auc(t, s) == pytest.approx(brute)
