"""Encoder training over several processes (``torchrun``; gloo on CPU, NCCL on CUDA).

    torchrun --standalone --nproc_per_node 2 -m cagereid train ...

Every process holds the whole data set and draws the same global batches (same seeds); each one runs the
model on its contiguous share of a batch (`Dist.part`). The contrastive loss needs the whole batch (the
negatives, and in faithful mode the file-order neighbours), so the projections are gathered across the
processes with a gradient-carrying all-gather (`Dist.gather`) and every process computes the global
contrastive loss, scaled by ``1 / world`` (the gather's backward sums the processes' gradients). The summed
per-window losses (``sum`` reduction) are the shares' sum; the ``mean`` reduction divides by the global batch
size. After the backward pass the gradients are summed across processes (`Dist.sum_`), so every process
clips and steps with the gradient of the global batch and the models stay identical; the explicit L2 term's
gradient is added after the sum (`cages.loss.add_l2_grad_`). Only rank 0 writes files and shows progress.

A single process (no ``WORLD_SIZE`` > 1 in the environment) trains exactly as before: `from_env` returns None.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Dist:
    rank: int
    world: int

    @property
    def main(self) -> bool:
        return self.rank == 0

    def bounds(self, n: int) -> np.ndarray:
        """Start offsets of every process's share of a batch of ``n`` (contiguous, sizes differ by at most 1)."""
        return np.concatenate([[0], np.cumsum([len(a) for a in np.array_split(np.arange(n), self.world)])])

    def part(self, n: int) -> slice:
        b = self.bounds(n)
        return slice(int(b[self.rank]), int(b[self.rank + 1]))

    def gather(self, z: torch.Tensor, n: int) -> torch.Tensor:
        """This process's rows ``z`` of a batch of ``n`` -> all ``n`` rows in batch order (gradients flow
        back to every process's own rows)."""
        import warnings

        from torch.distributed.nn.functional import all_gather

        b = self.bounds(n)
        width = int(np.diff(b).max())
        pad = width - z.shape[0]
        zp = torch.cat([z, z.new_zeros(pad, *z.shape[1:])]) if pad else z
        with warnings.catch_warnings():  # deprecated in favour of a private API; still the public autograd gather
            warnings.simplefilter("ignore", FutureWarning)
            parts = all_gather(zp.contiguous())
        return torch.cat([p[: int(b[r + 1] - b[r])] for r, p in enumerate(parts)])

    def sum_(self, tensors: list[torch.Tensor]) -> None:
        """Sum ``tensors`` across the processes, in place (one all-reduce of one flat buffer)."""
        import torch.distributed as dist

        if not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        k = 0
        for t in tensors:
            t.copy_(flat[k: k + t.numel()].view_as(t))
            k += t.numel()

    def broadcast_(self, tensors: list[torch.Tensor]) -> None:
        """Rank 0's values of ``tensors`` on every process (start from identical weights)."""
        import torch.distributed as dist

        for t in tensors:
            dist.broadcast(t, 0)

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()


def from_env(device: torch.device) -> Dist | None:
    """The process group torchrun describes in the environment (initialised on first use), or None when this
    is a single process."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def is_main_process() -> bool:
    """False only in a torchrun process of rank > 0."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def local_device(device: torch.device) -> torch.device:
    """One GPU per process under torchrun (``LOCAL_RANK``); CPU stays CPU."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device
