"""Reader for the UCalgary "Normal & Abnormal Gait Dataset" skeleton CSVs (real Kinect v2 walks).

Reference: P. Kozlow, N. Abid, S. Yanushkevich, "Utilizing gait traits to improve e-border watchlist
performance", IEEE SSCI 2017 (University of Calgary Biometric Technologies Laboratory). Development subset
in ``../shared/data/ucalgary_gait`` (``data/README.md``).

File layout::

    <root>/sub<S>/Run<R>/subject<S>_Seq_<R>_Gen_<M|F>_GeometricPositions_<N|AR|AL|OA>.csv

One header line, then one row per frame (120 frames at 30 fps): 18 joints × (X, Y, Z) in metres, camera
space (the subject walks towards the camera, Z ≈ 4.3 m decreasing), then derived distance columns
(ignored). Joint order = layout ``ucalgary18``: FootLeft, AnkleLeft, KneeLeft, HipLeft, FootRight,
AnkleRight, KneeRight, HipRight, SpineBase, SpineMid, Neck, Head, ShoulderLeft, ShoulderRight, WristLeft,
WristRight, ElbowLeft, ElbowRight. Runs 1-2 normal gait (N), 3-4 right-leg limp (AR), 5-6 left-leg limp
(AL); Run7 (subjects 1-5, "OA") is experimental and ignored unless asked for.

Counts in the development subset: 14 subject folders, 84 runs 1-6 (+5 Run7 files); 13 distinct people.

Real-world defects handled here:

* header spellings vary (``ShouldL``, ``Spine Mid X, Y, Z ,``): columns are mapped **by position** after
  checking that the header names at least 18 ``X, Y, Z`` groups; trailing commas and blank lines are
  tolerated; empty or malformed files are skipped and listed in ``UCalgaryData.skipped`` with a reason;
* exact duplicate recordings (same bytes): ``sub10`` is a copy of ``sub4`` (all runs) and ``sub6/Run6``
  a copy of ``sub6/Run5``. Files are visited in (subject, run) order and the *later* copy is dropped and
  listed in ``UCalgaryData.duplicates`` as ``(dropped_path, kept_path)``: ``sub10`` disappears entirely,
  ``sub6`` keeps Run5 and loses Run6;
* single joints reported as exactly ``(0, 0, 0)`` (the camera centre: the sensor lost the joint, a few
  frames in sub5 and sub11): by default replaced by linear interpolation in time of that joint
  (``zero_joints='interpolate'``) and listed in ``UCalgaryData.repaired``; ``'keep'`` leaves them.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from offline.datasets.base import DatasetError, WindowSet

J = 18
LAYOUT = "ucalgary18"
CONDITION_OF_RUN = {1: "N", 2: "N", 3: "AR", 4: "AR", 5: "AL", 6: "AL", 7: "OA"}

_SUBJECT_DIR = re.compile(r"^sub(\d+)$", re.IGNORECASE)
_RUN_DIR = re.compile(r"^run(\d+)$", re.IGNORECASE)
_COND_IN_NAME = re.compile(r"GeometricPositions_([A-Za-z]+)\.csv$", re.IGNORECASE)


@dataclass
class UCalgaryRecording:
    subject: int
    run: int
    condition: str  # 'N' | 'AR' | 'AL' ('OA' for the experimental Run7)
    joints: np.ndarray  # (T, 18, 3) float64, metres, camera space
    path: Path

    @property
    def recording_id(self) -> int:
        """``subject * 100 + run``: the ``recording`` value of this walk's windows."""
        return self.subject * 100 + self.run


@dataclass
class UCalgaryData:
    root: Path
    recordings: list[UCalgaryRecording] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason): empty/odd files
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (dropped copy, kept original)
    ignored: list[tuple[Path, str]] = field(default_factory=list)  # Run7 unless include_run7
    repaired: list[tuple[Path, int]] = field(default_factory=list)  # (path, joint-frames interpolated)

    @property
    def subjects(self) -> list[int]:
        return sorted({r.subject for r in self.recordings})

    def runs(self, subject: int) -> list[int]:
        return sorted(r.run for r in self.recordings if r.subject == subject)

    def get(self, subject: int, run: int) -> UCalgaryRecording | None:
        for r in self.recordings:
            if r.subject == subject and r.run == run:
                return r
        return None

    def summary(self) -> str:
        """Multi-line human summary: people, recordings, and every skipped/duplicate/repaired file."""
        lines = [f"UCalgary {self.root}: {len(self.subjects)} people, {len(self.recordings)} recordings "
                 f"({sum(len(r.joints) for r in self.recordings)} frames)"]
        r = self.root
        lines += [f"  skipped {_rel(p, r)}: {why}" for p, why in self.skipped]
        lines += [f"  duplicate dropped: {_rel(d, r)} is byte-identical to {_rel(o, r)}" for d, o in self.duplicates]
        lines += [f"  ignored {_rel(p, r)}: {why}" for p, why in self.ignored]
        lines += [f"  repaired {_rel(p, r)}: {n} lost joint positions (0, 0, 0) interpolated" for p, n in self.repaired]
        return "\n".join(lines)


class _Skip(Exception):
    """A file that is reported and skipped (not fatal for the dataset)."""


def read_geometric_positions(path: str | os.PathLike) -> np.ndarray:
    """Parse one ``*_GeometricPositions_*.csv`` into ``(T, 18, 3)`` float64 metres.

    Raises `DatasetError` (naming the file) for an empty file, a header naming fewer than 18 joints,
    a row with fewer than 54 numbers or a non-number, or non-finite values.
    """
    path = Path(path)
    try:
        return _parse(path)
    except _Skip as exc:
        raise DatasetError(f"{path}: {exc}") from None


def _parse(path: Path) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise _Skip(f"cannot read ({exc.strerror or exc})") from None
    lines = [ln for ln in text.splitlines() if ln.strip(" ,\t\r\ufeff")]
    if not lines:
        raise _Skip("empty file")
    first = _fields(lines[0])
    if _is_numeric(first):
        body = lines  # header missing: accept numbers from the first line on
    else:
        groups = _xyz_groups(first)
        if groups < J:
            raise _Skip(f"header names {groups} joints (X, Y, Z groups), expected {J}")
        body = lines[1:]
    if not body:
        raise _Skip("no frames after the header")
    rows = []
    for k, line in enumerate(body, start=len(lines) - len(body) + 1):
        values = _fields(line)
        if len(values) < 3 * J:
            raise _Skip(f"line {k} has {len(values)} values, expected at least {3 * J}")
        try:
            rows.append([float(v) for v in values[: 3 * J]])
        except ValueError:
            raise _Skip(f"line {k} holds a non-number") from None
    joints = np.asarray(rows, dtype=np.float64).reshape(len(rows), J, 3)
    if not np.isfinite(joints).all():
        raise _Skip("NaN/inf coordinates")
    return joints


def _fields(line: str) -> list[str]:
    values = [v.strip() for v in line.strip().lstrip("\ufeff").split(",")]
    while values and values[-1] == "":
        values.pop()  # trailing commas
    return values


def _is_numeric(values: list[str]) -> bool:
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return bool(values)


def _xyz_groups(header: list[str]) -> int:
    """Number of leading ``<name> X, Y, Z`` triples (spelling of the name is free)."""
    n = 0
    while 3 * n + 2 < len(header):
        a, b, c = (h.upper() for h in header[3 * n: 3 * n + 3])
        if not (a.endswith("X") and b == "Y" and c == "Z"):
            break
        n += 1
    return n


def _interpolate_zero_joints(joints: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace joints at exactly (0, 0, 0) by linear interpolation over time of the same joint."""
    lost = (joints == 0).all(axis=-1)  # (T, J)
    n_lost = int(lost.sum())
    if n_lost == 0:
        return joints, 0
    out = joints.copy()
    t = np.arange(len(joints))
    for j in np.flatnonzero(lost.any(axis=0)):
        ok = ~lost[:, j]
        if ok.sum() == 0:
            continue  # never seen: nothing to interpolate from (left at zero)
        for c in range(3):
            out[~ok, j, c] = np.interp(t[~ok], t[ok], joints[ok, j, c])
    return out, n_lost


def _discover(root: Path) -> list[tuple[int, int, Path | None, Path]]:
    """``[(subject, run, csv_or_None, run_dir)]`` sorted by subject then run."""
    found = []
    for sdir in root.iterdir():
        m = _SUBJECT_DIR.match(sdir.name)
        if not (m and sdir.is_dir()):
            continue
        for rdir in sdir.iterdir():
            r = _RUN_DIR.match(rdir.name)
            if not (r and rdir.is_dir()):
                continue
            csvs = sorted(p for p in rdir.iterdir() if "geometricpositions" in p.name.lower()
                          and p.suffix.lower() == ".csv")
            found.append((int(m.group(1)), int(r.group(1)), csvs, rdir))
    return sorted(found, key=lambda x: (x[0], x[1]))


def load_ucalgary(root: str | os.PathLike, include_run7: bool = False,
                  zero_joints: str = "interpolate") -> UCalgaryData:
    """Load every skeleton recording under ``root`` (the ``ucalgary_gait`` folder).

    Returns `UCalgaryData` with the recordings in (subject, run) order, the files skipped (with a
    reason), the exact duplicates dropped, the Run7 files ignored and the recordings whose lost
    joints were interpolated. Raises `DatasetError` only when ``root`` is missing or holds no recording.
    """
    if zero_joints not in ("interpolate", "keep"):
        raise ValueError(f"zero_joints must be 'interpolate' or 'keep', got {zero_joints!r}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: missing folder (UCalgary gait data: sub<S>/Run<R>/*_GeometricPositions_*.csv)")
    data = UCalgaryData(root=root)
    seen: dict[str, Path] = {}
    for subject, run, csvs, rdir in _discover(root):
        if not csvs:
            data.skipped.append((rdir, "no *_GeometricPositions_*.csv file"))
            continue
        if len(csvs) > 1:
            data.skipped.append((rdir, f"{len(csvs)} GeometricPositions files, expected one: "
                                       f"{', '.join(p.name for p in csvs)}"))
            continue
        path = csvs[0]
        if run == 7 and not include_run7:
            data.ignored.append((path, "Run7 is experimental (dataset README); include_run7=True reads it"))
            continue
        if run not in CONDITION_OF_RUN:
            data.skipped.append((path, f"unknown run number {run} (expected 1-7)"))
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        try:
            joints = _parse(path)
        except _Skip as exc:
            data.skipped.append((path, str(exc)))
            continue
        if digest in seen:
            data.duplicates.append((path, seen[digest]))
            continue
        seen[digest] = path
        if zero_joints == "interpolate":
            joints, n_fixed = _interpolate_zero_joints(joints)
            if n_fixed:
                data.repaired.append((path, n_fixed))
        m = _COND_IN_NAME.search(path.name)
        condition = m.group(1).upper() if m else CONDITION_OF_RUN[run]
        data.recordings.append(UCalgaryRecording(subject, run, condition, joints, path))
    if not data.recordings:
        raise DatasetError(f"{root}: no readable UCalgary recording (expected sub<S>/Run<R>/*_GeometricPositions_*.csv)")
    return data


def runs_label(runs: Iterable[int]) -> str:
    """``[1]`` -> ``'run1'``, ``[3, 4, 5, 6]`` -> ``'run3-6'``, ``[1, 3]`` -> ``'run1+3'``."""
    runs = sorted(set(int(r) for r in runs))
    if len(runs) > 2 and runs == list(range(runs[0], runs[-1] + 1)):
        return f"run{runs[0]}-{runs[-1]}"
    return "run" + "+".join(str(r) for r in runs)


def ucalgary_windows(data: UCalgaryData, f: int, runs: int | Iterable[int], stride: int = 1,
                     layout: str = LAYOUT, subjects: Iterable[int] | None = None,
                     rates: tuple[float, ...] = (1.0,)) -> WindowSet:
    """Sliding windows ``(N, f, J, 3)`` of the given runs, person by person, run by run, in time order.

    ``pids`` = subject number, ``recording`` = ``subject*100 + run``, ``offset`` = 0, ``start`` = first
    frame. ``layout`` other than ``ucalgary18`` converts the joints with ``pose.convert.convert`` and fails
    with `DatasetError` when a target joint cannot be derived. ``subjects`` restricts the people. ``rates``:
    every walk is also cut at these playback speeds (`cages.windows.warped_windows`; label-free training
    data, e.g. ``(1.0, 0.7)`` adds the walk as if walked slower), rate by rate within a walk.
    """
    runs = [int(runs)] if isinstance(runs, (int, np.integer)) else [int(r) for r in runs]
    keep = None if subjects is None else {int(s) for s in subjects}
    recs = sorted((r for r in data.recordings if r.run in runs and (keep is None or r.subject in keep)),
                  key=lambda r: (r.subject, r.run))
    from cages.windows import sliding_windows, warped_windows

    windows, pids, recording, start = [], [], [], []
    for rec in recs:
        joints = rec.joints
        if layout != LAYOUT:
            from pose.convert import convert
            from pose.layouts import get_layout

            try:
                joints, valid = convert(joints, LAYOUT, layout)
            except ValueError as exc:  # pose.layouts.LayoutError: unknown layout or no conversion
                raise DatasetError(f"{rec.path}: {exc}") from None
            if not valid.all():
                names = get_layout(layout).joints
                missing = sorted({names[j] for j in np.flatnonzero(~valid.all(axis=0))})
                raise DatasetError(f"{rec.path}: cannot convert {LAYOUT} to {layout}: "
                                   f"no source for {', '.join(missing)}")
        for rate in rates:
            w, s = sliding_windows(joints, f, stride=stride) if rate == 1.0 else warped_windows(joints, f, rate, stride)
            windows.append(w)
            pids.append(np.full(len(w), rec.subject))
            recording.append(np.full(len(w), rec.recording_id))
            start.append(s)
    n_joints = J if layout == LAYOUT else None
    if windows:
        w_all = np.concatenate(windows).astype(np.float64)
    else:
        if n_joints is None:
            from pose.layouts import get_layout

            n_joints = len(get_layout(layout).joints)
        w_all = np.zeros((0, f, n_joints, 3))
    n = len(w_all)
    return WindowSet(
        windows=w_all, pids=np.concatenate(pids) if pids else np.zeros(0, np.int64),
        dataset="UCALGARY", split=runs_label(runs), layout=layout,
        recording=np.concatenate(recording) if recording else None,
        offset=np.zeros(n, np.int64), start=np.concatenate(start) if start else None,
        meta={"root": str(data.root), "runs": runs, "f": f, "stride": stride, "rates": list(rates),
              "duplicates_dropped": [str(d) for d, _ in data.duplicates],
              "skipped": [f"{p}: {why}" for p, why in data.skipped]},
    )


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


if __name__ == "__main__":  # python -m offline.datasets.ucalgary [ROOT]: what the loader finds and skips
    import sys

    _root = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[3] / "shared" / "data"
                                                        / "ucalgary_gait")
    try:
        print(load_ucalgary(_root, include_run7="--run7" in sys.argv).summary())
    except DatasetError as _exc:
        print(f"error: {_exc}", file=sys.stderr)
        sys.exit(2)
