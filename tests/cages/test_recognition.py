"""Recognition network: window scores are the mean of the f frame-level logits (CAGE_SPEC §5)."""
import pytest
import torch

from cages.recognition import RecognitionNetwork, RNConfig, window_scores
from offline.training.rn import rn_scores


def test_window_scores_average_logits_of_contiguous_rows():
    logits = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0], [0.0, 1.0]])  # 2 windows x f=2
    assert torch.equal(window_scores(logits, 2), torch.tensor([[2.0, 1.0], [0.0, 3.0]]))
    assert torch.equal(window_scores(logits.reshape(2, 2, 2), 2), window_scores(logits, 2))
    assert torch.equal(window_scores(logits, 1), logits)  # SC: one row per window
    with pytest.raises(ValueError):
        window_scores(logits[:3], 2)


def test_rn_scores_are_raw_logit_means_not_probabilities():
    torch.manual_seed(0)
    rn = RecognitionNetwork(RNConfig(d_in=6, n_classes=3))
    feats = torch.randn(4, 5, 6)  # (N, f, D)
    s = rn_scores(rn, feats, 5)
    with torch.no_grad():
        expected = rn(feats.reshape(20, 6)).reshape(4, 5, 3).mean(1)
    assert s.shape == (4, 3) and torch.allclose(s, expected, atol=1e-5)
    assert torch.allclose(rn_scores(rn, feats.reshape(20, 6), 5), s)


def test_init_and_standardisation():
    torch.manual_seed(0)
    rn = RecognitionNetwork(RNConfig(d_in=300, n_classes=4, init="normal"))
    w, b = rn.fc1.weight.detach(), rn.fc1.bias.detach()
    assert 0.9 < float(w.std()) < 1.1 and float(b.abs().sum()) == 0.0  # N(0,1), 0
    rn2 = RecognitionNetwork(RNConfig(d_in=3, n_classes=2, init="default", standardise=True))
    rows = torch.tensor([[1.0, 10.0, 0.0], [3.0, 30.0, 0.0]])
    rn2.set_statistics(rows)
    assert torch.allclose(rn2.mean, torch.tensor([2.0, 20.0, 0.0]))
    assert float(rn2.std[2]) > 0  # constant column: no division by zero
    sd = rn2.state_dict()
    assert "mean" in sd and "std" in sd  # travels with the checkpoint
