"""Two label-free baselines evaluated in the same harness, on the same splits, as CAGEs.

* `RawCoords` ("raw-kNN"): every window's root-centred coordinates, flattened to ``f·J·3`` numbers and
  z-scored per feature with statistics of the gallery (training) windows; matched by nearest neighbour.
  Centring matters: uncentred coordinates identify the spot on the walkway, not the person
  (shared/notes/benchmarks.md).
* `D13Descriptor` ("D13-kNN"): hand-crafted, in the spirit of Munaro et al.'s D13 skeleton descriptor:
  anthropometric bone lengths (median over the window's frames) and a few gait statistics over the window
  (skeleton extent per axis, mean speed and swing amplitude of the end joints relative to the root),
  z-scored with gallery statistics.

Both expose ``fit(windows)`` (gallery statistics only, never labels) and ``embed(windows) -> (N, D)``,
the same interface the evaluation harness uses for the CAGE extractor. ``windows`` is ``(N, f, J, 3)``.
"""
from __future__ import annotations

import warnings

import numpy as np

from cages.windows import centre


def layout_info(layout: str, J: int) -> tuple[int | list[int], list[tuple[int, int]] | None]:
    """``(root joint(s), bones)`` of a layout name from `pose.layouts`; ``(0, None)`` when unknown.

    Layouts without a hip-centre joint (casia14, mediapipe33) centre on the mean of both hips."""
    try:
        from pose.layouts import get_layout

        lay = get_layout(layout)
    except Exception:  # noqa: BLE001 - unknown layout or module not available: fall back to joint 0
        return 0, None
    if len(lay.joints) != J:
        return 0, None
    root = [int(r) for r in lay.root_joints]
    return (root[0] if len(root) == 1 else root), [(int(i), int(j)) for i, j in lay.bones]


class _ZScored:
    """Shared fit/embed: subclasses define ``features(windows) -> (N, D)``."""

    name = ""

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def features(self, windows: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, windows: np.ndarray) -> "_ZScored":
        x = self.features(windows)
        self.mean = np.nanmean(x, axis=0)
        std = np.nanstd(x, axis=0)
        self.std = np.where(std > 1e-9, std, 1.0)  # constant features (e.g. the root itself) stay 0
        return self

    def embed(self, windows: np.ndarray) -> np.ndarray:
        if self.mean is None:
            raise RuntimeError(f"{self.name}: call fit(gallery windows) before embed()")
        z = (self.features(windows) - self.mean) / self.std
        return np.nan_to_num(z, nan=0.0)  # a missing joint contributes no evidence


class RawCoords(_ZScored):
    """Root-centred, z-scored raw coordinates, ``(N, f·J·3)``."""

    name = "raw-kNN"

    def __init__(self, root: int | list[int] = 0) -> None:
        super().__init__()
        self.root = root

    def features(self, windows: np.ndarray) -> np.ndarray:
        w = centre(np.asarray(windows, dtype=np.float64), self.root)  # (N, f, J, 3)
        return w.reshape(len(w), -1)


class D13Descriptor(_ZScored):
    """Bone lengths + gait statistics per window, ``(N, B + 3 + 2·E)`` (E end joints used)."""

    name = "D13-kNN"

    def __init__(self, root: int | list[int] = 0, bones: list[tuple[int, int]] | None = None) -> None:
        super().__init__()
        self.root = root
        self.bones = bones

    def features(self, windows: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():  # all-NaN slices (a joint missing in a whole window) give NaN, fine
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._features(np.asarray(windows, dtype=np.float64))

    def _features(self, w: np.ndarray) -> np.ndarray:
        N, f, J, _ = w.shape  # (N, f, J, 3)
        bones = self.bones
        if bones is None:  # unknown layout: every joint pair (still body proportions, just redundant)
            bones = [(i, j) for i in range(J) for j in range(i + 1, J)]
        a, b = np.array(bones).T
        lengths = np.linalg.norm(w[:, :, a] - w[:, :, b], axis=-1)  # (N, f, B)
        anthropometry = np.nanmedian(lengths, axis=1)  # (N, B)
        extent = np.nanmean(np.nanmax(w, axis=2) - np.nanmin(w, axis=2), axis=1)  # (N, 3) height, width, depth
        # end joints = joints in at most one bone (hands, feet, head); their motion relative to the root
        degree = np.bincount(np.r_[a, b], minlength=J)
        ends = np.flatnonzero(degree == 1) if self.bones is not None else np.arange(J)
        rel = centre(w, self.root)[:, :, ends]  # (N, f, E, 3)
        speed = np.nanmean(np.linalg.norm(np.diff(rel, axis=1), axis=-1), axis=1) if f > 1 else np.zeros((N, len(ends)))
        swing = np.linalg.norm(np.nanstd(rel, axis=1), axis=-1)  # (N, E)
        return np.concatenate([anthropometry, extent, speed, swing], axis=1)


def make_baseline(name: str, layout: str, J: int) -> _ZScored:
    """A baseline by its report name (``'raw-kNN'`` or ``'D13-kNN'``) for windows of ``layout``."""
    root, bones = layout_info(layout, J)
    if name == RawCoords.name:
        return RawCoords(root)
    if name == D13Descriptor.name:
        return D13Descriptor(root, bones)
    raise ValueError(f"unknown baseline {name!r} (use {RawCoords.name!r} or {D13Descriptor.name!r})")


BASELINES = (RawCoords.name, D13Descriptor.name)
