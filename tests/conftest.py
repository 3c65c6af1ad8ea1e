"""Shared pytest fixtures (keep small and stable: every test area may use them).

* ``shared_data``: ``Path`` of ``../shared/data`` next to the repository; skips the test when absent.
* ``ucalgary_root``: ``shared_data / 'ucalgary_gait'``; skips when absent.
* ``make_windowset``: factory ``(dataset, split, n=24, f=6, people=4, seed=0) -> WindowSet`` of random
  windows with the dataset's J and layout (no walker; pure NumPy).
* ``cage_dataset``: factory ``(dataset, f=None, view=None, n=24, seed=0) -> (root, {split: WindowSet})``:
  a complete random dataset written with ``write_cage_dataset`` under a fresh tmp folder.
* ``synth_biwi``: session-wide ``(root, {split: WindowSet})``, a tiny synthetic BIWI (f=6, 6 people)
  written by ``offline.synth.synth_dataset`` (walker-generated skeletons, the real code path).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA.resolve()} is absent")
    return SHARED_DATA.resolve()


@pytest.fixture(scope="session")
def ucalgary_root(shared_data: Path) -> Path:
    root = shared_data / "ucalgary_gait"
    if not root.is_dir():
        pytest.skip(f"UCalgary gait data not available: {root} is absent")
    return root


@pytest.fixture
def make_windowset():
    from offline.datasets.base import WindowSet
    from offline.datasets.cage_layout import DATASET_LAYOUT, canonical_dataset

    def make(dataset: str, split: str, n: int = 24, f: int = 6, people: int = 4, seed: int = 0) -> WindowSet:
        dataset = canonical_dataset(dataset)
        layout, J = DATASET_LAYOUT[dataset]
        rng = np.random.default_rng(seed)
        pids = np.sort(rng.choice(np.arange(100), size=people, replace=False))[np.arange(n) % people]
        return WindowSet(
            windows=rng.normal(size=(n, f, J, 3)), pids=pids, dataset=dataset, split=split, layout=layout,
            recording=pids * 10 + np.arange(n) % 2, offset=np.arange(n) // max(1, n // 3),
            start=np.arange(n) * f,
        )

    return make


@pytest.fixture
def cage_dataset(tmp_path: Path, make_windowset):
    from offline.datasets.cage_layout import DEFAULT_F, split_names, write_cage_dataset

    def make(dataset: str, f: int | None = None, view: int | None = None, n: int = 24, seed: int = 0):
        f = DEFAULT_F[dataset] if f is None else f
        splits = {s: make_windowset(dataset, s, n=n + 3 * k, f=f, seed=seed + k)
                  for k, s in enumerate(split_names(dataset))}
        root = tmp_path / f"Datasets_{dataset}_{f}_{view}_{seed}"
        write_cage_dataset(root, dataset, f, splits, view=view)
        return root, splits

    return make


@pytest.fixture(scope="session")
def synth_biwi(tmp_path_factory):
    from offline.synth import synth_dataset

    root = tmp_path_factory.mktemp("synth_biwi")
    splits = synth_dataset(root, "BIWI", f=6, identities=6, seed=0)
    return root, splits
