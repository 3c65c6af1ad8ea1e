"""CAGE training losses (CAGE_SPEC §2.4-§2.7, Appendix A).

* `rec_loss`: reconstruction ``½ Σ ‖ŷ − y‖²`` (sum over batch = original; mean over batch = improved mode).
* `la_loss`: locality-aware alignment ``½ Σ (α ⊙ (1 − O))²`` with the Gaussian profile of
  `cages.encoder.la_gaussian`.
* `adjacent_ntxent`: the original contrastive loss: file-order neighbours are positives, with the duplicated
  rows of the TF code (vectorised form of train.py:714-730).
* `positive_mask` + `multi_positive_ntxent`: the improved loss: positives are explicit (same recording, start
  frames at most ``max_shift`` apart), so batches can be shuffled.
* `l2_penalty`: ``λ Σ ½‖θ‖²`` over all parameters (added to the loss, not decoupled weight decay);
  `add_l2_grad_`: the same term applied after the backward pass (its gradient ``λθ`` added to ``.grad``, no
  autograd graph), what training uses.
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F


def rec_loss(y_hat: torch.Tensor, y: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """``½ Σ_n Σ_t ‖ŷ_t − y_t‖²``; ``reduction='mean'`` divides by the batch size (sum over frames/joints kept)."""
    loss = 0.5 * (y_hat - y).pow(2).sum()
    return loss / y.shape[0] if reduction == "mean" else loss


def la_loss(A: torch.Tensor, O: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """``½ Σ_n Σ_t Σ_i (α_t,i (1 − O_t,i))²`` for attention ``A (B, f, f)`` and profile ``O (f, f)``."""
    loss = 0.5 * (A * (1.0 - O)).pow(2).sum()
    return loss / A.shape[0] if reduction == "mean" else loss


def adjacent_ntxent(z: torch.Tensor, tau: float) -> torch.Tensor:
    """The original NT-Xent over a batch of consecutive windows ``z (B, d)`` (CAGE_SPEC §2.6, §10 Q5).

    ``Z = [z_1..z_{B−1}, z_0..z_{B−2}]``; row ``k`` and row ``k+B−1`` are positives (window n+1 and its
    predecessor n); every other row (including the duplicated copies) is in the denominator.
    Mean over the ``2(B−1)`` anchors.
    """
    Z = F.normalize(torch.cat([z[1:], z[:-1]], dim=0), dim=-1)  # (2M, d)
    S = (Z @ Z.T) / tau
    S = S.masked_fill(torch.eye(len(Z), dtype=torch.bool, device=z.device), float("-inf"))
    M = z.shape[0] - 1
    pos = torch.cat([torch.arange(M, device=z.device) + M, torch.arange(M, device=z.device)])
    return F.cross_entropy(S, pos)


def positive_mask(recording: torch.Tensor, start: torch.Tensor, max_shift: int) -> torch.Tensor:
    """``(B, B)`` bool: windows ``a ≠ b`` of the same recording whose start frames differ by ≤ ``max_shift``."""
    same = recording[:, None] == recording[None, :]
    near = (start[:, None] - start[None, :]).abs() <= max_shift
    eye = torch.eye(len(recording), dtype=torch.bool, device=recording.device)
    return same & near & ~eye


def multi_positive_ntxent(z: torch.Tensor, pos: torch.Tensor, tau: float) -> torch.Tensor:
    """NT-Xent with several positives per anchor (SupCon form): for every anchor ``a`` with positives,
    ``−mean_{p ∈ P(a)} log( exp(s_ap) / Σ_{b≠a} exp(s_ab) )`` with ``s = cos/τ``; mean over those anchors.
    """
    Z = F.normalize(z, dim=-1)
    S = (Z @ Z.T) / tau
    eye = torch.eye(len(Z), dtype=torch.bool, device=z.device)
    log_prob = S - torch.logsumexp(S.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    n_pos = pos.sum(1)
    has = n_pos > 0
    per_anchor = -(log_prob * pos).sum(1)[has] / n_pos[has]
    return per_anchor.mean() if has.any() else z.sum() * 0.0


def l2_penalty(params: Iterable[torch.Tensor], lam: float) -> torch.Tensor:
    """``λ Σ_θ ½‖θ‖²`` (TF ``l2_loss`` on every trainable variable, train.py:769-775)."""
    return lam * sum(0.5 * p.pow(2).sum() for p in params)


@torch.no_grad()
def add_l2_grad_(params: Iterable[torch.Tensor], lam: float) -> torch.Tensor:
    """The gradient of `l2_penalty`, ``λθ``, added to every trainable parameter's ``.grad`` after the backward
    pass (a parameter without one gets it, as the L2 term in the loss would give it); returns the term's value
    ``λ Σ ½‖θ‖²`` for the log. Same gradient as putting `l2_penalty` in the loss, without its autograd graph
    (about a tenth of a faithful training step's time on CPU)."""
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = p.detach() * lam
        else:
            p.grad.add_(p.detach(), alpha=lam)
    if not params:
        return torch.zeros(())
    return lam * 0.5 * torch.stack([p.detach().pow(2).sum() for p in params]).sum()
