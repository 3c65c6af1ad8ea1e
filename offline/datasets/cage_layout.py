"""Reader and writer of the CAGE paper's pre-processed dataset layout (CAGE_SPEC §1.1-§1.4).

Reference: Rao et al., T-PAMI 2021, code ``Kali-Hac/Locality-Awareness-SGE``; the layout is that of the
authors' released ``Datasets/`` folder. ``root`` below is the folder that holds ``BIWI/``, ``IAS/``, ...::

    BIWI/{f}/BIWI_train_npy_data/         source_{c}_BIWI_{f}.npy target_{c}_BIWI_{f}.npy ids_BIWI_{f}.npy frame_id_BIWI_{f}.npy
    BIWI/{f}/BIWI_test_npy_data/          t_source_{c}_BIWI_{f}.npy t_target_{c}_BIWI_{f}.npy ids_BIWI_{f}.npy ...  -> "Walking"
    BIWI/{f}/BIWI_test_Still_npy_data/    same names as the test folder                                  -> "Still" (ours)
    IAS/{f}/IAS_train_npy_data/           tag IAS
    IAS/{f}/IAS_test_npy_data/            tags IAS-A ("A") and IAS-B ("B") side by side
    KGBD/{f}/KGBD_{train,test}_npy_data/
    KS20/{f}/[view_{v}/]KS20_{train,test}_npy_data/          v in 0..4 (optional cross-view split)
    CASIA_B/{f}/view_{v}/CASIA_B_{train,test}_npy_data/      CVE, v in 0..10 (required), tag CASIA_B
    CASIA_B_match/{f}/CASIA_B_train_npy_data/                CME encoder training, tag CASIA_B
    CASIA_B_match/{f}/CASIA_B_test_npy_data/{nm,bg,cl}/      t_* files + ids per condition
    CASIA_B_match/{f}/CASIA_B_test_npy_data/                 top-level t_* files -> "test_all" (optional)

File contents (``{c}`` in x, y, z): ``[N·f, J]`` float64, window ``n`` is rows ``n·f .. n·f+f-1``;
``target`` is every window reversed in time; ``ids_*`` a pickled ``{person_id: [window indices]}``
(`offline.datasets.legacy`); ``frame_id_*`` the person id of every window (int64, ``[N]``).
Ours, beside them: ``meta_{tag}_{f}.npz`` with ``recording``, ``offset``, ``start`` per window (int64,
``[N]``); without it those fields are -1.

Joints: BIWI/IAS/KGBD 20 (``kinect_v1``), KS20 25 (``kinect_v2``), CASIA_B/CASIA_B_match 14 (``casia14``).

Validation raises `DatasetError` with the offending file in a one-line message: missing files, unreadable
files, wrong shapes, ``rows % f != 0``, x/y/z/target disagreeing, NaN/inf, target not the reverse of the
source, ids dict inconsistent (indices out of range, overlapping, not covering every window, disagreeing
with ``frame_id``), J not that of the dataset's layout. ``strict=False`` turns a missing or non-reversed
target (and a missing ids dict when ``frame_id`` exists) into a `DatasetWarning` and derives it instead.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cages.io import save_npy, save_npz
from cages.windows import reverse
from offline.datasets import registry
from offline.datasets.base import DatasetError, WindowSet
from offline.datasets.legacy import load_ids_dict, save_ids_dict

AXES = ("x", "y", "z")

#: Joint layout (``pose.layouts`` name) and joint count, and split keys (required, optional) of every dataset
#: in this layout: views of the dataset registry (``offline.datasets.registry``).
DATASETS: tuple[str, ...] = registry.CAGE
DATASET_LAYOUT: dict[str, tuple[str, int]] = {n: (registry.get(n).layout, registry.get(n).joints) for n in DATASETS}
SPLITS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    n: (registry.get(n).cage_splits, registry.get(n).cage_optional) for n in DATASETS}

#: Views: KS20 cross-view splits (optional), CASIA-B CVE views (required; v <-> 18·v degrees).
KS20_VIEWS = range(5)
CASIA_B_VIEWS = range(11)

#: Default f per dataset (CAGE_SPEC §1.1: 4/6/8/10 for Kinect sets, 20/30/40 CVE, 50/60/70 CME).
DEFAULT_F: dict[str, int] = {n: registry.get(n).default_f for n in DATASETS}


class DatasetWarning(UserWarning):
    """A lenient-mode repair (derived target or ids) of a dataset file."""


@dataclass(frozen=True)
class SplitFiles:
    """Where one split lives and what its files are called."""

    dataset: str
    split: str
    folder: Path
    tag: str  # file-name tag: "BIWI", "IAS-A", "CASIA_B", ...
    f: int
    test: bool  # test files carry the "t_" prefix on source/target

    def source(self, c: str) -> Path:
        return self.folder / f"{'t_' if self.test else ''}source_{c}_{self.tag}_{self.f}.npy"

    def target(self, c: str) -> Path:
        return self.folder / f"{'t_' if self.test else ''}target_{c}_{self.tag}_{self.f}.npy"

    @property
    def ids(self) -> Path:
        return self.folder / f"ids_{self.tag}_{self.f}.npy"

    @property
    def frame_id(self) -> Path:
        return self.folder / f"frame_id_{self.tag}_{self.f}.npy"

    @property
    def meta(self) -> Path:
        return self.folder / f"meta_{self.tag}_{self.f}.npz"

    def all_files(self) -> list[Path]:
        return ([self.source(c) for c in AXES] + [self.target(c) for c in AXES]
                + [self.ids, self.frame_id, self.meta])


# --- paths ---------------------------------------------------------------------------------------

def canonical_dataset(name: str) -> str:
    """``'biwi'`` -> ``'BIWI'``, ``'casia_b_match'`` -> ``'CASIA_B_match'``; names without this layout raise
    `DatasetError`."""
    try:
        return registry.canonical(name, DATASETS)
    except registry.UnknownDataset as exc:
        raise DatasetError(str(exc)) from None


def split_names(dataset: str, optional: bool = True) -> tuple[str, ...]:
    """Split keys of ``dataset``: the required ones, then (``optional=True``) the optional ones."""
    required, extra = SPLITS[canonical_dataset(dataset)]
    return required + (extra if optional else ())


def _check_view(dataset: str, view: int | None) -> int | None:
    if dataset == "CASIA_B":
        if view is None or int(view) not in CASIA_B_VIEWS:
            raise DatasetError(f"CASIA_B (CVE) needs a view 0..10 (angle 18·v degrees), got {view!r}")
        return int(view)
    if dataset == "KS20":
        if view is not None and int(view) not in KS20_VIEWS:
            raise DatasetError(f"KS20 view must be 0..4 or none, got {view!r}")
        return None if view is None else int(view)
    if view is not None:
        raise DatasetError(f"{dataset} has no views (got view={view!r}); views exist for KS20 and CASIA_B")
    return None


def dataset_folder(root: str | os.PathLike, dataset: str, f: int, view: int | None = None) -> Path:
    """``root/<dataset>/<f>[/view_<v>]``: the folder holding the ``*_npy_data`` folders."""
    dataset = canonical_dataset(dataset)
    view = _check_view(dataset, view)
    base = Path(root) / dataset / str(int(f))
    return base / f"view_{view}" if view is not None else base


def split_files(root: str | os.PathLike, dataset: str, f: int, split: str, view: int | None = None) -> SplitFiles:
    """File names of one split (original names, CAGE_SPEC §1.1)."""
    dataset = canonical_dataset(dataset)
    if split not in split_names(dataset):
        raise DatasetError(f"{dataset} has no split {split!r}; expected one of {', '.join(split_names(dataset))}")
    if int(f) < 1:
        raise DatasetError(f"sequence length f must be >= 1, got {f}")
    base = dataset_folder(root, dataset, f, view)
    tag = "CASIA_B" if dataset.startswith("CASIA_B") else dataset
    if split == "train":
        return SplitFiles(dataset, split, base / f"{tag}_train_npy_data", tag, int(f), test=False)
    test_dir = base / f"{tag}_test_npy_data"
    if dataset == "BIWI":
        folder = test_dir if split == "Walking" else base / "BIWI_test_Still_npy_data"
        return SplitFiles(dataset, split, folder, tag, int(f), test=True)
    if dataset == "IAS":
        return SplitFiles(dataset, split, test_dir, f"IAS-{split}", int(f), test=True)
    if dataset == "CASIA_B_match":
        folder = test_dir if split == "test_all" else test_dir / split
        return SplitFiles(dataset, split, folder, tag, int(f), test=True)
    return SplitFiles(dataset, split, test_dir, tag, int(f), test=True)


def _resolve_root(root: str | os.PathLike, dataset: str) -> Path:
    """Accept ``Datasets/`` (the documented form) and, forgivingly, ``Datasets/<dataset>`` itself."""
    root = Path(root)
    if not (root / dataset).is_dir() and root.name == dataset and root.is_dir():
        return root.parent
    return root


# --- reading -------------------------------------------------------------------------------------

def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: missing file")
    with open(path, "rb") as fp:
        if fp.read(6) != b"\x93NUMPY":
            raise DatasetError(f"{path}: not an .npy file (no NumPy header)")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - truncated, pickled or not an .npy at all
        raise DatasetError(f"{path}: cannot read .npy ({_one_line(exc)})") from None


def _load_axis_file(path: Path, f: int, J: int, dataset: str, layout: str) -> np.ndarray:
    """One ``[N·f, J]`` coordinate file -> ``(N, f, J)`` float64, validated."""
    a = _load_npy(path)
    if a.ndim != 2:
        raise DatasetError(f"{path}: expected a 2-D [N*f, J] array, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise DatasetError(f"{path}: expected float coordinates, got dtype {a.dtype}")
    rows, cols = a.shape
    if cols != J:
        raise DatasetError(f"{path}: has {cols} joints per row, expected J={J} for {dataset} ({layout})")
    if rows % f != 0:
        raise DatasetError(f"{path}: {rows} rows is not a multiple of f={f} (rows must be N*f)")
    a = np.asarray(a, dtype=np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        r, j = np.argwhere(bad)[0]
        raise DatasetError(f"{path}: {int(bad.sum())} NaN/inf values (first at row {r}, joint {j})")
    return a.reshape(rows // f, f, J)


def _check_ids(ids: dict[int, list[int]], n: int, path: Path) -> np.ndarray:
    """Person id per window from the ids dict; every window exactly once."""
    pids = np.full(n, -1, dtype=np.int64)
    seen = np.zeros(n, dtype=bool)
    for pid, indices in ids.items():
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0:
            continue
        out = (idx < 0) | (idx >= n)
        if out.any():
            raise DatasetError(f"{path}: person {pid} lists window index {int(idx[out][0])}, "
                               f"out of range for N={n} windows")
        if seen[idx].any() or len(np.unique(idx)) != len(idx):
            dup = int(idx[seen[idx]][0]) if seen[idx].any() else int(idx[np.argmax(np.bincount(idx))])
            raise DatasetError(f"{path}: window index {dup} is listed more than once (person {pid})")
        seen[idx] = True
        pids[idx] = pid
    if not seen.all():
        missing = np.flatnonzero(~seen)
        raise DatasetError(f"{path}: {len(missing)} of {n} windows belong to no person "
                           f"(first missing index {int(missing[0])})")
    return pids


def read_cage_split(files: SplitFiles, strict: bool = True, require_ids: bool = True) -> WindowSet:
    """Read and validate one split (see the module docstring for what is checked)."""
    dataset = files.dataset
    layout, J = DATASET_LAYOUT[dataset]
    f = files.f
    if not files.folder.is_dir():
        raise DatasetError(f"{files.folder}: missing folder (split {files.split!r} of {dataset}, f={f})")
    axes = [_load_axis_file(files.source(c), f, J, dataset, layout) for c in AXES]
    n = len(axes[0])
    for c, a in zip(AXES[1:], axes[1:]):
        if a.shape != axes[0].shape:
            raise DatasetError(f"{files.source(c)}: shape {a.shape[0] * f, J} differs from "
                               f"{files.source('x').name} {n * f, J}")
    windows = np.stack(axes, axis=-1)  # (N, f, J, 3)
    notes: list[str] = []

    for c, a in zip(AXES, axes):
        tpath = files.target(c)
        if not tpath.is_file():
            if strict:
                raise DatasetError(f"{tpath}: missing file")
            notes.append(f"{tpath}: missing; target derived by reversing the source")
            continue
        t = _load_axis_file(tpath, f, J, dataset, layout)
        if t.shape != a.shape:
            raise DatasetError(f"{tpath}: shape {t.shape[0] * f, J} differs from {files.source(c).name} {n * f, J}")
        ok = np.isclose(t, reverse(a)).all(axis=(1, 2))  # (N,) per window
        if not ok.all():
            if strict:
                bad = int(np.argmax(~ok))
                raise DatasetError(f"{tpath}: target is not the time-reversed source (first bad window {bad})")
            notes.append(f"{tpath}: not the time-reversed source; target derived by reversing the source")

    frame_id = None
    if files.frame_id.is_file():
        frame_id = _load_npy(files.frame_id)
        if frame_id.shape != (n,) or not np.issubdtype(frame_id.dtype, np.integer):
            raise DatasetError(f"{files.frame_id}: expected ({n},) integer person ids, "
                               f"got {frame_id.dtype} {frame_id.shape}")
        frame_id = frame_id.astype(np.int64)

    if files.ids.is_file():
        pids = _check_ids(load_ids_dict(files.ids), n, files.ids)
        if frame_id is not None and not np.array_equal(pids, frame_id):
            bad = int(np.flatnonzero(pids != frame_id)[0])
            raise DatasetError(f"{files.frame_id}: window {bad} has person {int(frame_id[bad])} "
                               f"but {files.ids.name} says {int(pids[bad])}")
    elif frame_id is not None and not strict:
        notes.append(f"{files.ids}: missing; person ids taken from {files.frame_id.name}")
        pids = frame_id
    elif require_ids:
        raise DatasetError(f"{files.ids}: missing file")
    else:
        notes.append(f"{files.ids}: missing; person ids unknown (-1)")
        pids = np.full(n, -1, dtype=np.int64)

    recording = offset = start = None
    if files.meta.is_file():
        try:
            with np.load(files.meta, allow_pickle=False) as z:
                meta = {k: z[k] for k in z.files}
        except Exception as exc:  # noqa: BLE001
            raise DatasetError(f"{files.meta}: cannot read .npz ({_one_line(exc)})") from None
        for key in ("recording", "offset", "start"):
            if key not in meta:
                raise DatasetError(f"{files.meta}: has no {key!r} array")
            v = meta[key]
            if v.shape != (n,) or not np.issubdtype(v.dtype, np.integer):
                raise DatasetError(f"{files.meta}: {key!r} must be ({n},) integers, got {v.dtype} {v.shape}")
        recording, offset, start = meta["recording"], meta["offset"], meta["start"]

    for note in notes:
        warnings.warn(note, DatasetWarning, stacklevel=3)
    return WindowSet(
        windows=windows, pids=pids, dataset=dataset, split=files.split, layout=layout,
        recording=recording, offset=offset, start=start,
        meta={"folder": str(files.folder), "tag": files.tag, "f": f, "warnings": notes},
    )


def read_cage_dataset(root: str | os.PathLike, dataset: str, f: int, view: int | None = None,
                      splits: list[str] | tuple[str, ...] | None = None,
                      strict: bool = True) -> dict[str, WindowSet]:
    """Read every split of ``dataset`` at sequence length ``f`` from ``root`` (the ``Datasets/`` folder).

    Returns ``{split: WindowSet}`` in the dataset's split order (``train`` first); optional splits
    (BIWI ``Still``, CASIA_B_match ``test_all``) are included when present. ``splits`` restricts the
    reading to those keys (then all of them must exist). ``view``: KS20 0..4 (optional), CASIA_B 0..10
    (required). Raises `DatasetError` naming the file on any problem.
    """
    dataset = canonical_dataset(dataset)
    root = _resolve_root(root, dataset)
    base = dataset_folder(root, dataset, f, view)
    if not base.is_dir():
        raise DatasetError(f"{base}: missing folder ({dataset} with f={f}"
                           f"{'' if view is None else f', view {view}'} under {root})")
    required, optional = SPLITS[dataset]
    wanted = list(splits) if splits is not None else list(required + optional)
    out: dict[str, WindowSet] = {}
    for split in wanted:
        files = split_files(root, dataset, f, split, view)
        if split in optional and splits is None and not files.source("x").is_file():
            continue
        ws = read_cage_split(files, strict=strict, require_ids=(split != "test_all"))
        ws.meta.update({"root": str(root), "view": view})
        out[split] = ws
    return out


def find_cage_datasets(root: str | os.PathLike, dataset: str | None = None,
                       f: int | None = None) -> list[tuple[str, int, int | None]]:
    """``[(dataset, f, view)]`` of every dataset folder under ``root`` (sorted), optionally filtered.

    Only the folder structure is looked at (``<dataset>/<f>/`` with ``*_npy_data`` inside, or
    ``view_<v>/`` folders); use `read_cage_dataset` to validate the files.
    """
    root = Path(root)
    names = [canonical_dataset(dataset)] if dataset is not None else list(DATASETS)
    if dataset is not None:
        root = _resolve_root(root, names[0])
    found: list[tuple[str, int, int | None]] = []
    for ds in names:
        ds_dir = root / ds
        if not ds_dir.is_dir():
            continue
        for f_dir in sorted(ds_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
            if not (f_dir.is_dir() and f_dir.name.isdigit()) or (f is not None and int(f_dir.name) != int(f)):
                continue
            if ds != "CASIA_B" and any(p.name.endswith("_npy_data") for p in f_dir.iterdir()):
                found.append((ds, int(f_dir.name), None))
            if ds in ("KS20", "CASIA_B"):
                views = sorted(int(p.name[5:]) for p in f_dir.iterdir()
                               if p.is_dir() and p.name.startswith("view_") and p.name[5:].isdigit())
                found += [(ds, int(f_dir.name), v) for v in views]
    return found


# --- writing -------------------------------------------------------------------------------------

def write_cage_split(files: SplitFiles, ws: WindowSet) -> None:
    """Write one split with the original file names (plus our ``meta_*.npz``); every file atomically."""
    layout, J = DATASET_LAYOUT[files.dataset]
    where = f"{files.dataset}/{files.split}"
    w = np.asarray(ws.windows)
    if w.ndim != 4 or w.shape[1] != files.f or w.shape[2] != J or w.shape[3] != 3:
        raise DatasetError(f"{where}: windows must be (N, f={files.f}, J={J}, 3) for {files.dataset} ({layout}), "
                           f"got {w.shape}")
    w = w.astype(np.float64, copy=False)
    if not np.isfinite(w).all():
        raise DatasetError(f"{where}: refusing to write NaN/inf coordinates to {files.folder}")
    n = len(w)
    files.folder.mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(AXES):
        src = np.ascontiguousarray(w[..., i])  # (N, f, J)
        save_npy(files.source(c), src.reshape(n * files.f, J))
        save_npy(files.target(c), reverse(src).reshape(n * files.f, J))
    save_ids_dict(files.ids, ws.ids_dict())
    save_npy(files.frame_id, ws.pids.astype(np.int64))
    save_npz(files.meta, recording=ws.recording.astype(np.int64), offset=ws.offset.astype(np.int64),
                    start=ws.start.astype(np.int64))


def write_cage_dataset(root: str | os.PathLike, dataset: str, f: int, splits: dict[str, WindowSet],
                       view: int | None = None) -> dict[str, Path]:
    """Write ``splits`` (``{split: WindowSet}``) of ``dataset`` under ``root`` in the original layout.

    All required splits of the dataset must be given (a partial dataset would not read back);
    returns ``{split: folder}``.
    """
    dataset = canonical_dataset(dataset)
    required, optional = SPLITS[dataset]
    unknown = [s for s in splits if s not in required + optional]
    if unknown:
        raise DatasetError(f"{dataset} has no split(s) {', '.join(map(repr, unknown))}; "
                           f"expected {', '.join(required + optional)}")
    missing = [s for s in required if s not in splits]
    if missing:
        raise DatasetError(f"{dataset}: cannot write an incomplete dataset, missing split(s) {', '.join(missing)}")
    out: dict[str, Path] = {}
    for split in required + optional:
        if split in splits:
            files = split_files(root, dataset, f, split, view)
            write_cage_split(files, splits[split])
            out[split] = files.folder
    return out


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
