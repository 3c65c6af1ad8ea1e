"""Loss functions: the LA Gaussian and its loss, the original adjacent NT-Xent, the metadata-positive NT-Xent."""
import math

import pytest
import torch
import torch.nn.functional as F

from cages.encoder import la_gaussian
from cages.loss import (adjacent_ntxent, add_l2_grad_, l2_penalty, la_loss, multi_positive_ntxent, positive_mask,
                        rec_loss)

PROFILES = {  # CAGE_SPEC §2.5: O_{t, p_t ± d} for d = 0, 1, ...
    4: [1, .8825, .6065, .3247],
    6: [1, .9460, .8007, .6065, .4111, .2494],
    8: [1, .9692, .8825, .7548, .6065, .4578, .3247, .2163],
    10: [1, .9802, .9231, .8353, .7261, .6065, .4868, .3753, .2780, .1979],
}


@pytest.mark.parametrize("f", [4, 6, 8, 10])
def test_la_gaussian_row_profiles(f):
    O = la_gaussian(f)
    # decoder step 0 reconstructs input frame f-1 (reversed): the profile decays from i = f-1 downwards
    assert torch.allclose(O[0].flip(0), torch.tensor(PROFILES[f]), atol=1e-4)
    for t in range(f):
        assert int(O[t].argmax()) == f - 1 - t
    # non-reversed centre (improved option for prediction/sorting): peak on the diagonal
    assert all(int(r.argmax()) == t for t, r in enumerate(la_gaussian(f, centre="same")))


def test_la_loss_matches_formula_and_is_zero_for_aligned_attention():
    f = 6
    O = la_gaussian(f)
    aligned = torch.eye(f).flip(1).expand(3, f, f)  # α_t = one-hot at p_t = f-1-t
    assert float(la_loss(aligned, O)) == pytest.approx(0.0, abs=1e-7)
    torch.manual_seed(0)
    A = torch.softmax(torch.randn(3, f, f), -1)
    loop = sum(0.5 * (A[n, t, i] * (1 - O[t, i])) ** 2 for n in range(3) for t in range(f) for i in range(f))
    assert float(la_loss(A, O)) == pytest.approx(float(loop), rel=1e-5)
    assert float(la_loss(A, O, "mean")) == pytest.approx(float(loop) / 3, rel=1e-5)
    uniform = torch.full((1, f, f), 1.0 / f)
    assert float(la_loss(uniform, O)) > float(la_loss(aligned[:1], O))


def _adjacent_loop(z, tau):
    """The original loop (train.py:714-730) written out: rows [z_1..z_{B-1}, z_0..z_{B-2}]."""
    B = len(z)
    Z = torch.cat([z[1:], z[:-1]])
    M = B - 1
    total = 0.0
    for a in range(2 * M):
        p = a + M if a < M else a - M
        sims = [F.cosine_similarity(Z[a], Z[b], dim=0) / tau for b in range(2 * M)]
        denom = sum(math.exp(float(sims[b])) for b in range(2 * M) if b != a)
        total += -(float(sims[p]) - math.log(denom))
    return total / (2 * M)


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_adjacent_ntxent_equals_the_original_loop(tau):
    torch.manual_seed(1)
    z = torch.randn(7, 5)
    assert float(adjacent_ntxent(z, tau)) == pytest.approx(_adjacent_loop(z, tau), rel=1e-5)


def test_adjacent_ntxent_positives_are_neighbours_and_temperature_matters():
    torch.manual_seed(0)
    base = torch.randn(4, 8)
    neighbours_alike = base.repeat_interleave(2, 0)  # z0=z1, z2=z3, ...: some neighbour pairs identical
    random = torch.randn(8, 8)
    assert float(adjacent_ntxent(neighbours_alike, 0.1)) < float(adjacent_ntxent(random, 0.1))
    assert float(adjacent_ntxent(random, 0.1)) != pytest.approx(float(adjacent_ntxent(random, 0.5)))


def test_positive_mask_same_recording_within_shift():
    rec = torch.tensor([1, 1, 1, 2, 2])
    start = torch.tensor([0, 20, 50, 0, 10])
    m = positive_mask(rec, start, max_shift=30)
    expected = torch.tensor([[0, 1, 0, 0, 0], [1, 0, 1, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0]], dtype=torch.bool)
    assert torch.equal(m, expected)


def test_multi_positive_ntxent_equals_loop_and_reduces_to_pairwise():
    torch.manual_seed(2)
    z = torch.randn(5, 4)
    pos = positive_mask(torch.tensor([1, 1, 1, 2, 2]), torch.tensor([0, 20, 50, 0, 10]), 30)
    tau = 0.2
    Z = F.normalize(z, dim=-1)
    S = Z @ Z.T / tau
    total, n = 0.0, 0
    for a in range(5):
        ps = [b for b in range(5) if pos[a, b]]
        if not ps:
            continue
        denom = torch.logsumexp(torch.stack([S[a, b] for b in range(5) if b != a]), 0)
        total += float(sum(-(S[a, p] - denom) for p in ps) / len(ps))
        n += 1
    assert float(multi_positive_ntxent(z, pos, tau)) == pytest.approx(total / n, rel=1e-5)
    # no positives anywhere: zero loss that still backpropagates
    zz = torch.randn(3, 4, requires_grad=True)
    out = multi_positive_ntxent(zz, torch.zeros(3, 3, dtype=torch.bool), tau)
    out.backward()
    assert float(out.detach()) == 0.0


def test_rec_and_l2():
    y = torch.zeros(2, 3, 4)
    y_hat = torch.ones(2, 3, 4)
    assert float(rec_loss(y_hat, y)) == 0.5 * 24
    assert float(rec_loss(y_hat, y, "mean")) == 0.5 * 12
    p = [torch.ones(3), torch.full((2,), 2.0)]
    assert float(l2_penalty(p, 0.02)) == pytest.approx(0.02 * 0.5 * (3 + 8))


def test_l2_gradient_added_after_backward_equals_the_l2_term_in_the_loss():
    """Training adds the explicit L2 term's gradient λθ after the backward pass (no autograd graph): the same
    gradients as `l2_penalty` in the loss, also for a parameter the loss does not reach (the faithful model's
    dummy copies), and the same value."""
    torch.manual_seed(0)
    w, unused = torch.randn(4, 3, requires_grad=True), torch.randn(5, requires_grad=True)
    x = torch.randn(6, 4)

    def data_loss():
        return (x @ w).pow(2).sum()

    (data_loss() + l2_penalty([w, unused], 0.02)).backward()
    ref = [w.grad.clone(), unused.grad.clone()]
    w.grad = unused.grad = None
    data_loss().backward()
    assert unused.grad is None
    value = add_l2_grad_([w, unused], 0.02)
    assert torch.allclose(w.grad, ref[0], rtol=1e-6, atol=1e-7) and torch.allclose(unused.grad, ref[1])
    assert float(value) == pytest.approx(float(l2_penalty([w, unused], 0.02).detach()), rel=1e-6)
