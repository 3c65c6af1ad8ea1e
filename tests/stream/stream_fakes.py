"""Test-only stand-in for the CAGE encoder (fast, deterministic, no training): used by the process tests
through ``--model stream_fakes:make_encoder`` so they do not depend on the shipped model.

Its embedding is the window's mean bone lengths (kinect_v1), which tells synthetic walkers apart
(pooled over a few seconds).
"""
from __future__ import annotations

import numpy as np

_BONES = [(0, 1), (1, 2), (2, 3), (2, 4), (4, 5), (5, 6), (2, 8), (8, 9), (9, 10), (0, 12), (12, 13), (13, 14),
          (0, 16), (16, 17), (17, 18)]


class FakeEncoder:
    f = 6
    layout = "kinect_v1"
    fingerprint = "fake0000test"

    def embed(self, windows: np.ndarray) -> np.ndarray:
        w = np.asarray(windows, np.float64)  # (B, f, J, 3)
        a, b = np.array(_BONES).T
        lengths = np.linalg.norm(w[:, :, a] - w[:, :, b], axis=-1).mean(1)  # (B, n_bones)
        return (10.0 * lengths).astype(np.float32)  # decimetres: body size and proportions


def make_encoder() -> FakeEncoder:
    return FakeEncoder()


class SlowEncoder(FakeEncoder):
    """Takes 20 ms per batch: lets a test flood the pipeline beyond its capacity."""

    fingerprint = "slow0000test"

    def embed(self, windows):
        import time

        time.sleep(0.02)
        return super().embed(windows)


def make_slow_encoder() -> SlowEncoder:
    return SlowEncoder()
