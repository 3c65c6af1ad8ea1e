"""The one in-memory form every dataset reader returns.

A `WindowSet` is a set of skeleton windows of one split of one dataset:

* ``windows``: ``(N, f, J, 3)`` float64, coordinates x, y, z (metres for Kinect data; image pixels plus a
  rescaled depth for lifted CASIA-B skeletons), frames in temporal order.
* ``pids``: ``(N,)`` int64, the dataset's own person ids (not class indices).
* ``recording``: ``(N,)`` int64, which walk/sequence the window was cut from (-1 when unknown).
* ``offset``: ``(N,)`` int64, the offset round of the window grid (-1 when unknown).
* ``start``: ``(N,)`` int64, first frame of the window inside its recording (-1 when unknown).

Windows keep the file order of the dataset (the original code's contrastive positives are file
neighbours, CAGE_SPEC §1.4), so readers never reorder them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from offline.errors import OfflineError


class DatasetError(OfflineError):
    """A dataset file or folder is missing, malformed or inconsistent; the message names the file."""


@dataclass
class WindowSet:
    windows: np.ndarray  # (N, f, J, 3)
    pids: np.ndarray  # (N,)
    dataset: str = ""  # e.g. "BIWI"
    split: str = ""  # e.g. "train", "Walking", "Still", "A", "B", "gallery", "probe", "nm", "view_3/test"
    layout: str = ""  # joint layout name from pose.layouts, e.g. "kinect_v1"
    recording: np.ndarray | None = None  # (N,)
    offset: np.ndarray | None = None  # (N,)
    start: np.ndarray | None = None  # (N,)
    meta: dict = field(default_factory=dict)  # free-form provenance (source folder, f, view, ...)

    def __post_init__(self) -> None:
        self.windows = np.asarray(self.windows)
        self.pids = np.asarray(self.pids, dtype=np.int64)
        n = len(self.windows)
        if self.windows.ndim != 4 or self.windows.shape[-1] != 3:
            raise DatasetError(f"{self.dataset}/{self.split}: windows must be (N, f, J, 3), got {self.windows.shape}")
        if self.pids.shape != (n,):
            raise DatasetError(f"{self.dataset}/{self.split}: {n} windows but {self.pids.shape} person ids")
        for name in ("recording", "offset", "start"):
            value = getattr(self, name)
            value = np.full(n, -1, dtype=np.int64) if value is None else np.asarray(value, dtype=np.int64)
            if value.shape != (n,):
                raise DatasetError(f"{self.dataset}/{self.split}: {name} has shape {value.shape}, expected ({n},)")
            setattr(self, name, value)

    # --- shape helpers -------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.windows.shape[0])

    @property
    def f(self) -> int:
        return int(self.windows.shape[1])

    @property
    def J(self) -> int:  # noqa: N802 - the field's own symbol
        return int(self.windows.shape[2])

    def axis(self, c: str | int) -> np.ndarray:
        """The ``(N, f, J)`` array of one coordinate axis (``'x'``, ``'y'``, ``'z'`` or 0..2)."""
        i = "xyz".index(c) if isinstance(c, str) else int(c)
        return self.windows[..., i]

    def ids_dict(self) -> dict[int, list[int]]:
        """``{pid: [window indices]}``: the legacy ``ids_*.npy`` content."""
        out: dict[int, list[int]] = {}
        for i, pid in enumerate(self.pids.tolist()):
            out.setdefault(int(pid), []).append(i)
        return out

    def subset(self, index: np.ndarray, split: str | None = None) -> "WindowSet":
        index = np.asarray(index)
        return WindowSet(
            windows=self.windows[index], pids=self.pids[index], dataset=self.dataset,
            split=self.split if split is None else split, layout=self.layout,
            recording=self.recording[index], offset=self.offset[index], start=self.start[index],
            meta=dict(self.meta),
        )

    def __repr__(self) -> str:
        return (f"WindowSet({self.dataset}/{self.split}: N={self.n}, f={self.f}, J={self.J}, "
                f"{len(np.unique(self.pids))} people, layout={self.layout or '?'})")
