"""Readers for the raw recordings of BIWI, IAS-Lab, KGBD and KS20, as their owners distribute them.

Reference: ``DATA_PREP.md`` §1 (read from the authors' ``Preprocess.py``). Folder layouts, below the
``--data-root`` (which may be the folder holding ``BIWI/``... or the dataset folder itself):

* BIWI RGBD-ID: ``BIWI/Training/<pid>/``, ``BIWI/Testing/Walking/<pid>/``, ``BIWI/Testing/Still/<pid>/``.
  One text file per frame, name ending in ``skel.txt``, frame order = sorted file names. One line per
  joint, comma-separated: 0 joint index, 1-3 x, y, z (metres), 6 tracking state (0 = not tracked),
  7 quality. The first 20 lines (Kinect v1 joints) are used. 50 training people, 28 test people.
* IAS-Lab RGBD-ID: ``IAS/Training/``, ``IAS/TestingA/``, ``IAS/TestingB/``; the leaf folders holding the
  ``*skel.txt`` files are the person folders (person id = the first integer in the leaf folder's name, or
  in the nearest parent folder below the split folder that has one, **ours**: the description we follow
  does not spell it out). Same per-frame format. 11 people.
* KGBD: ``KGBD/kinect gait raw dataset/PersonNNN/<sequence>.txt``; one file per sequence, lines
  ``JointName;x;y;z``, 20 consecutive lines = one frame. 164 people, person 15 has 3 sequences.
  Recording names are ``PersonNNN/<sequence>.txt``.
* KS20: ``KS20/<view>/`` with views ``frontal``, ``left_diagonal``, ``left_lateral``, ``right_diagonal``,
  ``right_lateral``; one text file per frame named ``<setting>_body<N>_<timestamp>...``, setting
  ``gc1``-``gc3``; 25 comma-separated lines (Kinect v2), fields 1-3 x, y, z. Body numbers are not
  contiguous: sorted body numbers map to person ids 0..19 (`RawDataset.body_map`).

Rules: a BIWI/IAS frame with any of its 20 joints untracked is dropped whole and counted. A malformed
file (unparsable, too few joint lines, a KGBD file whose line count is not a multiple of 20, a KS20 file
name without setting/body/timestamp) is skipped, named in `RawDataset.skipped` with its reason, and
the run goes on. Then ``trim`` frames (10, ``clip_num`` in the original) are removed at both ends of
every recording; ``original_trim=True`` reproduces the script's asymmetric trimming (IAS training
recordings: start only). A recording with no frames left is dropped and reported.

Every listing is sorted, so the same tree always gives the same recordings in the same order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from offline.datasets import registry
from offline.datasets.base import DatasetError

#: Raw split folders (relative to the dataset folder) -> our split name.
BIWI_SPLITS = {"Training": "train", "Testing/Walking": "Walking", "Testing/Still": "Still"}
IAS_SPLITS = {"Training": "train", "TestingA": "A", "TestingB": "B"}
KGBD_FOLDER = "kinect gait raw dataset"
KS20_VIEWS = ("frontal", "left_diagonal", "left_lateral", "right_diagonal", "right_lateral")
KS20_SETTINGS = ("gc1", "gc2", "gc3")
KS20_NAME = re.compile(r"^(gc[123])_body(\d+)_(\d+)")
DEFAULT_TRIM = 10  # clip_num of the original script

Progress = Callable[[int], None]  # called with the number of files just processed


@dataclass
class RawRecording:
    """One walk of one person: ``joints`` ``(T, J, 3)`` float64, metres, Kinect camera space."""

    dataset: str
    split: str  # BIWI train/Walking/Still; IAS train/A/B; KGBD and KS20 "all" (split later by seed)
    pid: int  # dataset person id (KS20: index of the body number in the sorted body numbers)
    name: str  # stable id: path of the recording relative to the dataset folder (KS20: view/setting_bodyN)
    joints: np.ndarray  # (T, J, 3)
    setting: str = ""  # KS20 gc1..gc3; KGBD sequence file stem
    view: str = ""  # KS20 view folder
    frames_read: int = 0  # frame files / frames parsed
    frames_untracked: int = 0  # dropped because a joint was not tracked
    frames_trimmed: int = 0  # removed by trimming

    @property
    def T(self) -> int:  # noqa: N802
        return int(self.joints.shape[0])


@dataclass
class RawDataset:
    dataset: str
    root: Path
    recordings: list[RawRecording] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    too_short: list[str] = field(default_factory=list)  # recordings with no frame left after trimming
    body_map: dict[int, int] = field(default_factory=dict)  # KS20 body number -> person id

    @property
    def frames_untracked(self) -> int:
        return sum(r.frames_untracked for r in self.recordings)

    def summary(self) -> str:
        """One paragraph: what was read, dropped and skipped (with names)."""
        people = len({r.pid for r in self.recordings})
        frames = sum(r.T for r in self.recordings)
        lines = [f"{self.dataset}: {len(self.recordings)} recordings of {people} people, {frames} frames kept; "
                 f"{self.frames_untracked} untracked frames dropped, "
                 f"{sum(r.frames_trimmed for r in self.recordings)} trimmed; "
                 f"{len(self.skipped)} malformed file(s) skipped"]
        for path, reason in self.skipped:
            lines.append(f"  skipped {path}: {reason}")
        for name in self.too_short:
            lines.append(f"  dropped recording {name}: no frames left after trimming")
        return "\n".join(lines)


# --- locating the dataset folder ---------------------------------------------------------------------
def dataset_folder(dataset: str, raw_root: str | Path) -> Path:
    """The folder of ``dataset`` given either its parent or the folder itself; `DatasetError` if absent."""
    root = Path(raw_root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    markers = {"BIWI": ("Training", "Testing"), "IAS": ("Training", "TestingA"), "KGBD": (KGBD_FOLDER,),
               "KS20": KS20_VIEWS}[dataset]
    for cand in (root / dataset, root):
        if cand.is_dir() and any((cand / m).is_dir() for m in markers):
            return cand
    if dataset == "KGBD" and any(p.is_dir() and p.name.startswith("Person") for p in root.iterdir()):
        return root  # the "kinect gait raw dataset" folder itself
    want = ", ".join(f"{dataset}/{m}/" for m in markers)
    raise DatasetError(f"{root}: not a raw {dataset} tree (expected {want})")


# --- per-file parsers ------------------------------------------------------------------------------
def parse_skel_frame(path: Path, J: int = 20) -> tuple[np.ndarray, bool]:
    """One BIWI/IAS ``*skel.txt`` frame -> (``(J, 3)`` xyz, all joints tracked). Raises ValueError if malformed."""
    rows = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if len(rows) < J:
        raise ValueError(f"{len(rows)} joint lines, expected {J}")
    xyz = np.empty((J, 3), dtype=np.float64)
    tracked = True
    for j, ln in enumerate(rows[:J]):
        fields = [s.strip() for s in ln.split(",")]
        if len(fields) < 7:
            raise ValueError(f"line {j + 1} has {len(fields)} fields, expected at least 7")
        xyz[j] = [float(fields[1]), float(fields[2]), float(fields[3])]
        if float(fields[6]) == 0:
            tracked = False
    if not np.isfinite(xyz).all():
        raise ValueError("non-finite coordinates")
    return xyz, tracked


def parse_kgbd_sequence(path: Path, J: int = 20) -> np.ndarray:
    """One KGBD sequence file -> ``(T, J, 3)``. Raises ValueError if malformed (e.g. truncated)."""
    rows = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if not rows:
        raise ValueError("empty file")
    if len(rows) % J:
        raise ValueError(f"{len(rows)} lines is not a multiple of {J} (truncated?)")
    xyz = np.empty((len(rows), 3), dtype=np.float64)
    names: list[str] = []
    for i, ln in enumerate(rows):
        fields = [s.strip() for s in ln.split(";")]
        if len(fields) < 4:
            raise ValueError(f"line {i + 1} is not 'JointName;x;y;z'")
        xyz[i] = [float(fields[1]), float(fields[2]), float(fields[3])]
        if i < J:
            names.append(fields[0])
        elif fields[0] != names[i % J]:
            raise ValueError(f"line {i + 1}: joint {fields[0]!r} where {names[i % J]!r} was expected")
    if not np.isfinite(xyz).all():
        raise ValueError("non-finite coordinates")
    return xyz.reshape(-1, J, 3)


def parse_ks20_frame(path: Path, J: int = 25) -> np.ndarray:
    """One KS20 frame file -> ``(J, 3)``. Raises ValueError if malformed."""
    rows = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if len(rows) < J:
        raise ValueError(f"{len(rows)} joint lines, expected {J}")
    xyz = np.empty((J, 3), dtype=np.float64)
    for j, ln in enumerate(rows[:J]):
        fields = [s.strip() for s in ln.split(",")]
        if len(fields) < 4:
            raise ValueError(f"line {j + 1} has {len(fields)} fields, expected at least 4")
        xyz[j] = [float(fields[1]), float(fields[2]), float(fields[3])]
    if not np.isfinite(xyz).all():
        raise ValueError("non-finite coordinates")
    return xyz


# --- listing ---------------------------------------------------------------------------------------
def _leading_int(name: str) -> int | None:
    m = re.search(r"\d+", name)
    return int(m.group()) if m else None


def _skel_leaves(split_dir: Path) -> list[tuple[Path, list[Path]]]:
    """Leaf folders under ``split_dir`` holding ``*skel.txt`` files, sorted, with their sorted frame files."""
    out = []
    for d in sorted([split_dir, *[p for p in split_dir.rglob("*") if p.is_dir()]]):
        frames = sorted(p for p in d.iterdir() if p.is_file() and p.name.endswith("skel.txt"))
        if frames:
            out.append((d, frames))
    return out


def list_raw_files(dataset: str, folder: Path) -> int:
    """How many files `read_raw` will parse (for a progress bar)."""
    if dataset in ("BIWI", "IAS"):
        splits = BIWI_SPLITS if dataset == "BIWI" else IAS_SPLITS
        return sum(len(fr) for s in splits if (folder / s).is_dir() for _, fr in _skel_leaves(folder / s))
    if dataset == "KGBD":
        base = folder / KGBD_FOLDER if (folder / KGBD_FOLDER).is_dir() else folder
        return sum(1 for p in base.glob("*/*.txt"))
    return sum(1 for v in KS20_VIEWS if (folder / v).is_dir() for p in (folder / v).iterdir() if p.is_file())


# --- trimming --------------------------------------------------------------------------------------
def trim_recording(joints: np.ndarray, trim: int, start_only: bool = False) -> np.ndarray:
    """Remove ``trim`` frames at the start and (unless ``start_only``) at the end."""
    T = len(joints)
    end = T if start_only else T - trim
    return joints[trim:end] if end > trim else joints[:0]


# --- readers ---------------------------------------------------------------------------------------
def _read_skel_dataset(ds: RawDataset, folder: Path, splits: dict[str, str], trim: int, original_trim: bool,
                       progress: Progress | None) -> None:
    for raw_split, split in splits.items():
        split_dir = folder / raw_split
        if not split_dir.is_dir():
            raise DatasetError(f"{split_dir}: missing {ds.dataset} split folder")
        for leaf, frames in _skel_leaves(split_dir):
            # person id: the first integer in the leaf folder's name, else in its nearest parent below the split
            pid = next((v for v in map(_leading_int, reversed(leaf.relative_to(split_dir).parts)) if v is not None),
                       None)
            rel = leaf.relative_to(folder).as_posix()
            if pid is None:
                ds.skipped.append((str(leaf), "person folder name has no integer person id"))
                if progress:
                    progress(len(frames))
                continue
            kept, untracked = [], 0
            for fp in frames:
                parsed = _parse_or_skip(ds, fp, parse_skel_frame, progress)
                if parsed is None:
                    continue
                xyz, tracked = parsed
                if tracked:
                    kept.append(xyz)
                else:
                    untracked += 1
            joints = np.stack(kept) if kept else np.zeros((0, 20, 3))
            start_only = original_trim and ds.dataset == "IAS" and split == "train"
            trimmed = trim_recording(joints, trim, start_only)
            rec = RawRecording(ds.dataset, split, pid, rel, trimmed, frames_read=len(frames),
                               frames_untracked=untracked, frames_trimmed=len(joints) - len(trimmed))
            _add(ds, rec)


def _parse_or_skip(ds: RawDataset, fp: Path, parse, progress: Progress | None):
    """``parse(fp)``, or None after recording a malformed file in ``ds.skipped``; advances the progress bar."""
    try:
        return parse(fp)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        ds.skipped.append((str(fp), str(exc)))
        return None
    finally:
        if progress:
            progress(1)


def _add(ds: RawDataset, rec: RawRecording) -> None:
    if rec.T == 0:
        ds.too_short.append(rec.name)
    else:
        ds.recordings.append(rec)


def _read_kgbd(ds: RawDataset, folder: Path, trim: int, progress: Progress | None) -> None:
    base = folder / KGBD_FOLDER if (folder / KGBD_FOLDER).is_dir() else folder
    for person in sorted(p for p in base.iterdir() if p.is_dir()):
        pid = _leading_int(person.name)
        files = sorted(p for p in person.iterdir() if p.is_file() and p.suffix.lower() == ".txt")
        if pid is None:
            ds.skipped.append((str(person), "person folder name has no integer person id"))
            if progress:
                progress(len(files))
            continue
        for fp in files:
            joints = _parse_or_skip(ds, fp, parse_kgbd_sequence, progress)
            if joints is None:
                continue
            trimmed = trim_recording(joints, trim)
            # name relative to the Person folders' parent: the same whichever folder --data-root named
            _add(ds, RawRecording("KGBD", "all", pid, fp.relative_to(base).as_posix(), trimmed, setting=fp.stem,
                                  frames_read=len(joints), frames_trimmed=len(joints) - len(trimmed)))


def _read_ks20(ds: RawDataset, folder: Path, trim: int, progress: Progress | None) -> None:
    groups: dict[tuple[str, str, int], list[tuple[int, Path]]] = {}
    for view in KS20_VIEWS:
        vdir = folder / view
        if not vdir.is_dir():
            continue
        for fp in sorted(p for p in vdir.iterdir() if p.is_file()):
            m = KS20_NAME.match(fp.name)
            if not m:
                ds.skipped.append((str(fp), "name is not <setting>_body<N>_<timestamp>"))
                if progress:
                    progress(1)
                continue
            groups.setdefault((view, m.group(1), int(m.group(2))), []).append((int(m.group(3)), fp))
    if not groups:
        raise DatasetError(f"{folder}: no KS20 frame files in any of the view folders {', '.join(KS20_VIEWS)}")
    bodies = sorted({b for _, _, b in groups})
    ds.body_map = {b: i for i, b in enumerate(bodies)}
    for (view, setting, body), items in sorted(groups.items()):
        kept = []
        for _, fp in sorted(items):  # frame order = timestamp order
            xyz = _parse_or_skip(ds, fp, parse_ks20_frame, progress)
            if xyz is not None:
                kept.append(xyz)
        joints = np.stack(kept) if kept else np.zeros((0, 25, 3))
        trimmed = trim_recording(joints, trim)
        _add(ds, RawRecording("KS20", "all", ds.body_map[body], f"{view}/{setting}_body{body}", trimmed,
                              setting=setting, view=view, frames_read=len(items),
                              frames_trimmed=len(joints) - len(trimmed)))


def read_raw(dataset: str, raw_root: str | Path, trim: int = DEFAULT_TRIM, original_trim: bool = False,
             progress: Progress | None = None) -> RawDataset:
    """Read every recording of ``dataset`` (``BIWI``, ``IAS``, ``KGBD``, ``KS20``) below ``raw_root``.

    Returns a `RawDataset` whose recordings are sorted by (split, person, name). Malformed files are
    skipped and listed in ``.skipped``; a missing dataset or split folder raises `DatasetError`.
    """
    if dataset not in registry.RAW_BENCHMARKS:
        raise DatasetError(f"no raw reader for {dataset!r}; expected one of {', '.join(registry.RAW_BENCHMARKS)}")
    if trim < 0:
        raise DatasetError(f"trim must be >= 0, got {trim}")
    folder = dataset_folder(dataset, raw_root)
    ds = RawDataset(dataset, folder)
    if dataset in ("BIWI", "IAS"):
        _read_skel_dataset(ds, folder, BIWI_SPLITS if dataset == "BIWI" else IAS_SPLITS, trim, original_trim,
                           progress)
    elif dataset == "KGBD":
        _read_kgbd(ds, folder, trim, progress)
    else:
        _read_ks20(ds, folder, trim, progress)
    order = {s: i for i, s in enumerate(("train", "Walking", "Still", "A", "B", "all"))}
    ds.recordings.sort(key=lambda r: (order[r.split], r.pid, r.name))
    if not ds.recordings:
        raise DatasetError(f"{folder}: no usable {dataset} recordings ({len(ds.skipped)} malformed file(s) skipped)")
    return ds

