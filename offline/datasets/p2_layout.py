"""The retrieval (P2) on-disk layout of the authors' later repositories: reader and writer.

Reference: ``DATA_PREP.md`` §3-§5 (SimMC / SPC-MGR / Hi-MPC ``Preprocess.py``). File layout, with
``<DS>`` the dataset tag and ``<f>`` the window length::

    <root>/<DS>/<f>/train_npy_data/source_{x,y,z}_<DS>_<f>.npy      (N*f, J) float64, one row per frame
                                  ids_<DS>_<f>.npy                  pickled {pid: [window indices]}
                                  frame_id_<DS>_<f>.npy             (N,) int64 person id per window
                                  meta_<DS>_<f>.npz                 ours: recording, offset, start (N,) int64
    <root>/<DS>/<f>/test_npy_data/<split>/t_source_{x,y,z}_<DS>_<f>.npy, ids_..., frame_id_..., meta_...

``<split>``: ``Walking``/``Still`` (BIWI), ``A``/``B`` (IAS), ``gallery``/``probe`` (KGBD, KS20),
``gallery``/``same``/``cross`` (UCALGARY, ours). There are no ``target_*`` files. The coordinates are
not centred (the retrieval models subtract joint 0 themselves).

`read_p2_dataset` returns ``{split: WindowSet}`` with keys ``train`` plus the test splits, and validates
like the CAGE-layout reader: missing files, x/y/z shape mismatch, rows not divisible by ``f``, NaN/inf,
``J`` not the dataset's, ids dict inconsistent with ``frame_id``. Every error is a `DatasetError`
naming the file. The metadata file is optional (absent: -1 everywhere).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from cages.io import save_npy, save_npz
from offline.datasets.base import DatasetError, WindowSet
from offline.protocols import JOINTS, LAYOUT_OF, P2_SPLITS

META_KEYS = ("recording", "offset", "start")


# --- paths ------------------------------------------------------------------------------------------
def p2_folder(root: str | Path, dataset: str, f: int, split: str) -> Path:
    """Folder of one split: ``<root>/<DS>/<f>/train_npy_data`` or ``.../test_npy_data/<split>``."""
    base = Path(root) / dataset / str(int(f))
    return base / "train_npy_data" if split == "train" else base / "test_npy_data" / split


def p2_files(root: str | Path, dataset: str, f: int, split: str) -> dict[str, Path]:
    """``{'x','y','z','ids','frame_id','meta'}`` -> path of that file of one split."""
    folder = p2_folder(root, dataset, f, split)
    prefix = "source" if split == "train" else "t_source"
    tag = f"{dataset}_{int(f)}"
    out = {c: folder / f"{prefix}_{c}_{tag}.npy" for c in "xyz"}
    out["ids"] = folder / f"ids_{tag}.npy"
    out["frame_id"] = folder / f"frame_id_{tag}.npy"
    out["meta"] = folder / f"meta_{tag}.npz"
    return out


def _known_dataset(dataset: str) -> str:
    if dataset not in P2_SPLITS:
        raise DatasetError(f"{dataset!r} has no retrieval (P2) layout; expected one of {', '.join(P2_SPLITS)}")
    return dataset


# --- writing ----------------------------------------------------------------------------------------
def write_p2_split(root: str | Path, dataset: str, f: int, split: str, ws: WindowSet) -> dict[str, Path]:
    """Write one split in the P2 layout (float64 ``(N*f, J)`` per axis, ids dict, frame ids, metadata).

    Every file is written atomically; the same ``ws`` always gives byte-identical files.
    """
    from offline.datasets.legacy import save_ids_dict

    _known_dataset(dataset)
    if ws.n and ws.f != f:
        raise DatasetError(f"{dataset}/{split}: windows have f={ws.f}, expected {f}")
    files = p2_files(root, dataset, f, split)
    J = ws.windows.shape[2]
    w = np.asarray(ws.windows, dtype=np.float64)
    for i, c in enumerate("xyz"):
        save_npy(files[c], np.ascontiguousarray(w[..., i].reshape(ws.n * f, J)))
    ids = {int(k): [int(i) for i in v] for k, v in sorted(ws.ids_dict().items())}
    save_ids_dict(files["ids"], ids)
    save_npy(files["frame_id"], ws.pids.astype(np.int64))
    save_npz(files["meta"], **{k: getattr(ws, k).astype(np.int64) for k in META_KEYS})
    return files


def write_p2_dataset(root: str | Path, dataset: str, f: int, splits: dict[str, WindowSet]) -> list[Path]:
    """Write every split of ``splits`` (keys as in `offline.protocols.P2_SPLITS`); returns the files."""
    _known_dataset(dataset)
    unknown = sorted(set(splits) - set(P2_SPLITS[dataset]))
    if unknown:
        raise DatasetError(f"{dataset}: unknown P2 split(s) {unknown}; expected {list(P2_SPLITS[dataset])}")
    written: list[Path] = []
    for split in P2_SPLITS[dataset]:
        if split in splits:
            written += list(write_p2_split(root, dataset, f, split, splits[split]).values())
    return written


# --- reading ----------------------------------------------------------------------------------------
def _load_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: missing file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable .npy array ({_one_line(exc)})") from None


def read_p2_split(root: str | Path, dataset: str, f: int, split: str) -> WindowSet:
    """Read and validate one split; errors are `DatasetError` naming the offending file."""
    from offline.datasets.legacy import load_ids_dict

    _known_dataset(dataset)
    f = int(f)
    files = p2_files(root, dataset, f, split)
    J_expected = JOINTS[dataset]
    axes = []
    for c in "xyz":
        a = _load_array(files[c])
        if a.ndim != 2:
            raise DatasetError(f"{files[c]}: expected a 2-D (N*f, J) array, got shape {a.shape}")
        if a.shape[1] != J_expected:
            raise DatasetError(f"{files[c]}: {a.shape[1]} joints, {dataset} has {J_expected}")
        if a.shape[0] % f:
            raise DatasetError(f"{files[c]}: {a.shape[0]} rows is not a multiple of f={f}")
        if axes and a.shape != axes[0].shape:
            raise DatasetError(f"{files[c]}: shape {a.shape} differs from {files['x'].name} {axes[0].shape}")
        if not np.issubdtype(a.dtype, np.floating):
            raise DatasetError(f"{files[c]}: dtype {a.dtype}, expected float")
        if not np.isfinite(a).all():
            raise DatasetError(f"{files[c]}: contains NaN or inf")
        axes.append(a.astype(np.float64, copy=False))
    N = axes[0].shape[0] // f
    windows = np.stack(axes, axis=-1).reshape(N, f, J_expected, 3)  # (N, f, J, 3)

    pids = _load_array(files["frame_id"])
    if pids.shape != (N,) or not np.issubdtype(pids.dtype, np.integer):
        raise DatasetError(f"{files['frame_id']}: expected ({N},) integer person ids, got {pids.shape} {pids.dtype}")
    if not files["ids"].is_file():
        raise DatasetError(f"{files['ids']}: missing file")
    ids = load_ids_dict(files["ids"])
    _check_ids(files["ids"], ids, pids)

    meta = {k: None for k in META_KEYS}
    if files["meta"].is_file():
        try:
            with np.load(files["meta"], allow_pickle=False) as z:
                for k in META_KEYS:
                    if k not in z.files:
                        raise DatasetError(f"{files['meta']}: no {k!r} array")
                    v = z[k]
                    if v.shape != (N,):
                        raise DatasetError(f"{files['meta']}: {k} has shape {v.shape}, expected ({N},)")
                    meta[k] = v.astype(np.int64)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            if isinstance(exc, DatasetError):
                raise
            raise DatasetError(f"{files['meta']}: not a readable .npz ({_one_line(exc)})") from None
    return WindowSet(windows=windows, pids=pids.astype(np.int64), dataset=dataset, split=split,
                     layout=LAYOUT_OF[dataset], meta={"source": str(p2_folder(root, dataset, f, split)), "f": f,
                                                      "protocol_layout": "p2"}, **meta)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_ids(path: Path, ids: object, pids: np.ndarray) -> None:
    if not isinstance(ids, dict):
        raise DatasetError(f"{path}: expected a pickled dict {{pid: [indices]}}, got {type(ids).__name__}")
    N = len(pids)
    seen = np.zeros(N, dtype=bool)
    for pid, idx in ids.items():
        idx = np.asarray(list(idx), dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= N):
            raise DatasetError(f"{path}: person {pid} has window indices outside 0..{N - 1}")
        if seen[idx].any() or len(np.unique(idx)) != len(idx):
            raise DatasetError(f"{path}: person {pid} has window indices that another entry also claims")
        seen[idx] = True
        if (pids[idx] != int(pid)).any():
            raise DatasetError(f"{path}: person {pid}'s windows disagree with frame_id")
    if not seen.all():
        raise DatasetError(f"{path}: {int((~seen).sum())} of {N} windows belong to no person")


def read_p2_dataset(root: str | Path, dataset: str, f: int, splits: tuple[str, ...] | None = None
                    ) -> dict[str, WindowSet]:
    """Read ``<root>/<dataset>/<f>/`` in the P2 layout -> ``{split: WindowSet}``.

    ``root`` is the folder holding ``BIWI/``, ``KGBD/``, ... (the ``--out`` of `cagereid prepare`; the
    dataset folder itself is accepted too). Keys:
    ``train`` plus ``Walking``/``Still`` (BIWI), ``A``/``B`` (IAS), ``gallery``/``probe`` (KGBD, KS20),
    ``gallery``/``same``/``cross`` (UCALGARY). ``splits`` restricts which are read (default: all; a missing
    split folder is an error naming it).
    """
    _known_dataset(dataset)
    root = Path(root)
    if not (root / dataset).is_dir() and root.name == dataset and root.is_dir():
        root = root.parent  # forgiving: Datasets/<DS> given instead of Datasets/
    base = root / dataset / str(int(f))
    if not base.is_dir():
        raise DatasetError(f"{base}: no such folder (expected a P2-layout {dataset} dataset with f={f}; "
                           f"make one with `cagereid prepare --layout p2`)")
    wanted = P2_SPLITS[dataset] if splits is None else tuple(splits)
    out: dict[str, WindowSet] = {}
    for split in wanted:
        if split not in P2_SPLITS[dataset]:
            raise DatasetError(f"{dataset}: unknown P2 split {split!r}; expected one of {list(P2_SPLITS[dataset])}")
        out[split] = read_p2_split(root, dataset, f, split)
    return out
