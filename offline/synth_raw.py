"""Synthetic raw recordings in the owners' file formats of BIWI, IAS-Lab, KGBD and KS20.

The tree that `write_raw_tree` writes is what `offline.datasets.raw.read_raw` reads (``DATA_PREP.md``
§1), including the real data's defects, so tests go raw -> ``prepare`` -> read -> evaluate end to end:

* BIWI / IAS: per-frame ``NNNNN_skel.txt`` files; some frames have an untracked joint (tracking state
  0, the frame must be dropped), one frame file is truncated (too few joint lines) and one has a
  non-numeric coordinate (both must be skipped and named).
* KGBD: one ``Name;x;y;z`` file per sequence; one person has 3 sequences (like person 15); one
  sequence file is truncated mid-frame (skipped).
* KS20: per-frame files ``gc<k>_body<N>_<timestamp>.txt`` in five view folders; body numbers have gaps;
  timestamps cross a power of ten (so file-name order differs from time order); one frame file truncated.

Walks come from `pose.synthetic` (stable identity parameters, per-walk variation). `SynthRawInfo` lists
what was written and what a correct reader must find (frames kept per recording before trimming).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from offline.datasets.raw import KGBD_FOLDER, KS20_VIEWS

# pose.synthetic headings: -90 = straight towards the camera, 0 = left to right across the view.
KS20_HEADINGS = {"frontal": -90.0, "left_diagonal": -45.0, "left_lateral": 0.0, "right_diagonal": -135.0,
                 "right_lateral": 180.0}


@dataclass
class SynthRawInfo:
    dataset: str
    root: Path  # the dataset folder (root/<DS>)
    kept_frames: dict[str, int] = field(default_factory=dict)  # recording name -> frames a reader keeps (untrimmed)
    pids: dict[str, int] = field(default_factory=dict)  # recording name -> person id
    untracked: int = 0  # frames with an untracked joint
    bad_files: list[str] = field(default_factory=list)  # files a reader must skip (paths relative to root)
    walks: dict[str, np.ndarray] = field(default_factory=dict)  # recording name -> written joints (T, J, 3)
    clean: set[str] = field(default_factory=set)  # recordings written without any defect


def _walker(layout: str, people: int, seed: int):
    """``walk(person, walk_index, n_frames, heading_deg) -> (T, J, 3)`` from `pose.synthetic`."""
    from pose import synthetic

    ids = synthetic.make_identities(people, seed=seed)

    def walk(person: int, k: int, n_frames: int, heading: float | None = None) -> np.ndarray:
        # heading None: a random direction towards the camera (BIWI/IAS/KGBD are frontal-ish recordings)
        res = synthetic.walk(ids[person], n_frames, layout=layout, fps=30.0, seed=synthetic.walk_seed(seed, k),
                             heading_deg=heading)
        return np.asarray(res.joints, dtype=np.float64)  # (T, J, 3), no dropped joints

    return walk


def write_text(path: Path, text: str) -> None:
    """Plain write: the whole tree is built in a hidden temp folder and renamed into place at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _fmt(v: float) -> str:
    return f"{v:.6f}"


def _skel_lines(xyz: np.ndarray, untracked_joint: int | None) -> str:
    lines = []
    for j, (x, y, z) in enumerate(xyz):
        state = 0 if j == untracked_joint else 2
        # 0 joint index, 1-3 x y z, 4-5 image position, 6 tracking state, 7 quality
        lines.append(f"{j},{_fmt(x)},{_fmt(y)},{_fmt(z)},{320 + int(100 * x)},{240 - int(100 * y)},{state},1")
    return "\n".join(lines) + "\n"


def _write_skel_recording(info: SynthRawInfo, folder: Path, joints: np.ndarray, name: str, pid: int,
                          defects: dict[int, str]) -> None:
    """Per-frame ``*skel.txt`` files; ``defects``: frame -> 'untracked' | 'truncated' | 'garbage'."""
    kept = 0
    for t, xyz in enumerate(joints):
        path = folder / f"{t:05d}_skel.txt"
        kind = defects.get(t)
        text = _skel_lines(xyz, untracked_joint=7 if kind == "untracked" else None)
        if kind == "truncated":
            text = "\n".join(text.splitlines()[:12]) + "\n"
        elif kind == "garbage":
            text = text.replace(_fmt(xyz[3, 1]), "nan?", 1)
        write_text(path, text)
        if kind == "untracked":
            info.untracked += 1
        elif kind in ("truncated", "garbage"):
            info.bad_files.append(path.relative_to(info.root).as_posix())
        else:
            kept += 1
    info.kept_frames[name] = kept
    info.pids[name] = pid
    info.walks[name] = joints
    if not defects:
        info.clean.add(name)


def _write_skel_dataset(root: Path, dataset: str, people: int, frames: int, seed: int) -> SynthRawInfo:
    walk = _walker("kinect_v1", people, seed)
    folder = root / dataset
    info = SynthRawInfo(dataset, folder)
    if dataset == "BIWI":
        # Training: every person; Walking/Still: all but the last (BIWI tests 28 of its 50 people).
        plan = [("Training", list(range(people))), ("Testing/Walking", list(range(people - 1))),
                ("Testing/Still", list(range(people - 1)))]
        leaf = lambda pid: f"{pid}"  # noqa: E731 - BIWI: the person folder is the integer id
    else:
        plan = [("Training", list(range(people))), ("TestingA", list(range(people))),
                ("TestingB", list(range(people)))]
        leaf = lambda pid: f"{pid + 1:02d}"  # noqa: E731 - IAS: leaf folder named by the id (1-based)
    for k, (split, pids) in enumerate(plan):
        for person in pids:
            pid = person if dataset == "BIWI" else person + 1
            name = f"{split}/{leaf(person)}"
            defects: dict[int, str] = {}
            if person == 0:
                defects = {12: "untracked", 13: "untracked", 20: "truncated"}
            if person == 1 and k == 1:
                defects = {5: "garbage", 6: "untracked"}
            _write_skel_recording(info, folder / split / leaf(person), walk(person, k, frames), name, pid, defects)
    return info


def _write_kgbd(root: Path, people: int, frames: int, seed: int) -> SynthRawInfo:
    from pose.layouts import get_layout

    names = get_layout("kinect_v1").joints
    walk = _walker("kinect_v1", people, seed)
    folder = root / "KGBD"
    info = SynthRawInfo("KGBD", folder)
    for person in range(people):
        pid = person + 1
        n_seq = 3 if person == 1 else 4 + person % 2  # one person with 3 sequences, like KGBD's person 15
        for k in range(n_seq):
            joints = walk(person, k, frames)
            path = folder / KGBD_FOLDER / f"Person{pid:03d}" / f"{k + 1}.txt"
            lines = [f"{names[j]};{_fmt(x)};{_fmt(y)};{_fmt(z)}" for xyz in joints for j, (x, y, z) in enumerate(xyz)]
            rel = path.relative_to(folder / KGBD_FOLDER).as_posix()  # the reader's recording name
            if person == 0 and k == n_seq - 1:
                lines = lines[:-7]  # truncated mid-frame: the whole file is skipped
                info.bad_files.append(path.relative_to(folder).as_posix())
            else:
                info.kept_frames[rel] = len(joints)
                info.pids[rel] = pid
                info.walks[rel] = joints
                info.clean.add(rel)
            write_text(path, "\n".join(lines) + "\n")
    return info


def _write_ks20(root: Path, people: int, frames: int, seed: int) -> SynthRawInfo:
    walk = _walker("kinect_v2", people, seed)
    folder = root / "KS20"
    info = SynthRawInfo("KS20", folder)
    bodies = [3 * p + (p % 2) + 1 for p in range(people)]  # gaps: 1, 5, 7, 11, ...
    for person, body in enumerate(bodies):
        for s, setting in enumerate(("gc1", "gc2", "gc3")):
            for v, view in enumerate(KS20_VIEWS):
                joints = walk(person, s * 10 + v, frames, KS20_HEADINGS[view])
                name = f"{view}/{setting}_body{body}"
                stamp0 = 99_990 - 3 * frames // 2 + 1000 * s  # crosses 100000 within the first walk
                kept = 0
                for t, xyz in enumerate(joints):
                    path = folder / view / f"{setting}_body{body}_{stamp0 + 3 * t}.txt"
                    lines = [f"{j},{_fmt(x)},{_fmt(y)},{_fmt(z)}" for j, (x, y, z) in enumerate(xyz)]
                    if person == 0 and s == 0 and v == 0 and t == 9:
                        lines = lines[:10]
                        info.bad_files.append(path.relative_to(folder).as_posix())
                    else:
                        kept += 1
                    write_text(path, "\n".join(lines) + "\n")
                info.kept_frames[name] = kept
                info.pids[name] = person
                info.walks[name] = joints
                if kept == len(joints):
                    info.clean.add(name)
    return info


def write_raw_tree(root: str | Path, dataset: str, people: int = 4, frames: int = 40, seed: int = 0) -> SynthRawInfo:
    """Write a synthetic raw ``dataset`` tree under ``root/<dataset>/``; see the module docstring.

    ``frames``: frames per recording before defects and trimming (keep > 2*10 + f for the default trim).
    """
    root = Path(root)
    if people < 3:
        raise ValueError("need at least 3 people")
    writers = {"BIWI": _write_skel_dataset, "IAS": _write_skel_dataset, "KGBD": _write_kgbd, "KS20": _write_ks20}
    if dataset not in writers:
        raise ValueError(f"no synthetic raw writer for {dataset!r}; expected BIWI, IAS, KGBD or KS20")
    final = root / dataset
    if final.exists():
        raise FileExistsError(f"{final}: already exists")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dataset}.", dir=root))
    try:
        args = (tmp, dataset, people, frames, seed) if dataset in ("BIWI", "IAS") else (tmp, people, frames, seed)
        info = writers[dataset](*args)
        os.replace(tmp / dataset, final)  # the tree appears whole or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info.root = final
    return info


def main(argv: list[str] | None = None) -> int:
    """``python -m offline.synth_raw OUT [--dataset ...] [--people N] [--frames T] [--seed S]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m offline.synth_raw",
                                     description="write synthetic raw BIWI/IAS/KGBD/KS20 trees (owners' file formats, "
                                                 "with their defects) for trying `cagereid prepare`")
    parser.add_argument("out", help="folder to create <DATASET>/ in")
    from offline.datasets.registry import RAW_BENCHMARKS

    parser.add_argument("--dataset", nargs="+", default=list(RAW_BENCHMARKS), choices=RAW_BENCHMARKS)
    parser.add_argument("--people", type=int, default=6)
    parser.add_argument("--frames", type=int, default=60, help="frames per recording before defects and trimming")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for ds in args.dataset:
        info = write_raw_tree(args.out, ds, people=args.people, frames=args.frames, seed=args.seed)
        print(f"{info.root}: {len(info.kept_frames)} recordings, {len(info.bad_files)} malformed file(s), "
              f"{info.untracked} untracked frame(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
