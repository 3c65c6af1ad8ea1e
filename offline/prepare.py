"""Raw benchmark recordings -> windows on disk, in the CAGE layout or the retrieval (P2) layout.

References: ``DATA_PREP.md`` §1-§4 (the authors' ``Preprocess.py``), ``CAGE_SPEC.md`` §1.4.

Pipeline (`prepare`): read the raw recordings (`offline.datasets.raw`, or the UCalgary CSVs), choose
the seeded gallery/probe recordings (KGBD, KS20), cut windows, write the layout, then write
``splits.json`` (the choices) and ``prepare_<layout>.json`` (the manifest: arguments, input fingerprint,
window counts, skipped files). Output folder: ``<out>/<DS>/<f>/``; both layouts can live there side by
side (``train_npy_data/``+``test_npy_data/`` vs ``<DS>_train_npy_data/``...).

Windows (``f`` consecutive frames, native frame rate):

* P2 training part: for every offset ``s = 0..f-1`` the recording is cut with stride ``max(1, f//2)``;
  rounds stacked offset-major (offset 0 for all people, then offset 1, ...), people in id order,
  windows in temporal order. KGBD's training part, as in the original script: offset 0, stride ``f``.
* P2 test parts (probe splits, KGBD/KS20/UCALGARY gallery): offset 0, stride ``f``.
* CAGE layout: stride ``f``, offsets ``0..rounds-1`` (10 rounds, CAGE_SPEC §1.4) stacked offset-major,
  for every split; the writer adds the reversed targets. BIWI's training split keeps only the people
  who appear in a test split (the released files' 28 people, CAGE_SPEC §1.5).

Splits: BIWI Training / Walking / Still and IAS Training / TestingA / TestingB as shipped. KGBD: per
person, 2 random sequences -> gallery and 1 -> probe when the person has 4 or more; 1 and 1 when the
person has 2 or 3 (person 15); fewer: training only. KS20: per person, one random setting of gc1-gc3
-> gallery and another -> probe (all views of that setting); the rest -> training. Draws use
``numpy.random.default_rng(seed)`` over people in id order and their recordings in name order, so
the same seed gives the same split on every machine. CAGE layout of KGBD/KS20: ``test`` = the probe
recordings, ``train`` = everything else (gallery included).

UCALGARY (``--data-root`` = the ``ucalgary_gait`` folder, P2 layout only): training = gallery = Run1,
``same`` = Run2, ``cross`` = Run3-6; no trimming by default (120-frame walks); duplicates dropped by the
reader.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from cages.io import write_text
from cages.windows import sliding_windows
from offline.datasets.base import DatasetError, WindowSet
from offline.datasets.raw import DEFAULT_TRIM, RawRecording, dataset_folder, list_raw_files, read_raw
from offline.protocols import CAGE_SPLITS, JOINTS, LAYOUT_OF, P2_SPLITS, RAW_DATASETS, UCALGARY_RUNS
from offline.errors import OfflineError

MANIFEST_VERSION = 1
CAGE_ROUNDS = 10



@dataclass
class PrepareConfig:
    dataset: str  # BIWI | IAS | KGBD | KS20 | UCALGARY
    raw_root: str  # folder holding the raw dataset (or its parent)
    f: int  # window length in frames
    layout: str = "p2"  # "p2" (retrieval, DATA_PREP §4) or "cage" (CAGE_SPEC §1.1)
    seed: int = 0  # KGBD / KS20 gallery+probe draws
    out: str = "Datasets"  # the Datasets/ folder: writes <out>/<DS>/<f>/
    trim: int | None = None  # frames cut at each end; None -> 10 (Kinect sets), 0 (UCALGARY)
    original_trim: bool = False  # reproduce the script's start-only trimming of IAS training recordings
    rounds: int = CAGE_ROUNDS  # CAGE layout: offset rounds 0..rounds-1
    force: bool = False  # rebuild even when the manifest says the output is up to date

    def effective_trim(self) -> int:
        if self.trim is not None:
            return int(self.trim)
        return 0 if self.dataset == "UCALGARY" else DEFAULT_TRIM


@dataclass
class Recording:
    """A recording ready to be windowed: its integer id is its index in `Prepared.recordings`."""

    rid: int
    pid: int
    name: str
    role: str  # split role: train/Walking/Still/A/B (as shipped); KGBD/KS20 train/gallery/probe; UCALGARY run<k>
    joints: np.ndarray  # (T, J, 3)
    setting: str = ""
    view: str = ""


@dataclass
class Prepared:
    """What `prepare` did: the split windows, the output folder and the summary."""

    out_dir: Path
    splits: dict[str, WindowSet]
    recordings: list[Recording]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    up_to_date: bool = False
    manifest: dict = field(default_factory=dict)


# --- loading ---------------------------------------------------------------------------------------
def _input_fingerprint(folder: Path) -> str:
    """sha256 over (relative path, size, mtime) of every file below ``folder``, in sorted order."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _load_kinect(cfg: PrepareConfig, progress: Callable[[int], None] | None):
    raw = read_raw(cfg.dataset, cfg.raw_root, trim=cfg.effective_trim(), original_trim=cfg.original_trim,
                   progress=progress)
    notes = [f"dropped recording {n}: no frames left after trimming" for n in raw.too_short]
    if raw.frames_untracked:
        notes.append(f"{raw.frames_untracked} untracked frame(s) dropped")
    return raw.recordings, [(_rel(p, raw.root), r) for p, r in raw.skipped], notes, raw.body_map


def _rel(path: str, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _load_ucalgary(cfg: PrepareConfig):
    from offline.datasets.ucalgary import load_ucalgary

    data = load_ucalgary(cfg.raw_root)
    root = Path(cfg.raw_root)
    trim = cfg.effective_trim()
    recs, notes = [], []
    for r in data.recordings:
        if r.run not in {k for runs in UCALGARY_RUNS.values() for k in runs}:
            continue
        j = np.asarray(r.joints, dtype=np.float64)
        j = j[trim:len(j) - trim] if trim else j
        if len(j) == 0:
            notes.append(f"dropped recording {_rel(r.path, root)}: no frames left after trimming")
            continue
        recs.append(RawRecording("UCALGARY", f"run{r.run}", int(r.subject), _rel(r.path, root), j,
                                 setting=f"Run{r.run}"))
    for dup, orig in data.duplicates:
        notes.append(f"duplicate recording {_rel(dup, root)} (same bytes as {_rel(orig, root)}) dropped")
    skipped = [(_rel(p, root), reason) for p, reason in data.skipped]
    return recs, skipped, notes, {}


# --- split choice ----------------------------------------------------------------------------------
def choose_roles(dataset: str, recs: list[RawRecording], seed: int) -> tuple[list[str], dict]:
    """Role of every recording (same order as ``recs``) and the JSON-able record of the random choices."""
    if dataset in ("BIWI", "IAS"):
        return [r.split for r in recs], {}
    if dataset == "UCALGARY":
        return [r.split for r in recs], {}
    rng = np.random.default_rng(seed)
    roles = ["train"] * len(recs)
    choices: dict[str, dict[str, list[str]]] = {}
    people: dict[int, list[int]] = {}
    for i, r in enumerate(recs):
        people.setdefault(r.pid, []).append(i)
    for pid in sorted(people):
        idx = sorted(people[pid], key=lambda i: recs[i].name)
        if dataset == "KGBD":
            names = [recs[i].name for i in idx]
            n_gal = 2 if len(idx) >= 4 else 1
            if len(idx) < 2:
                continue
            perm = rng.permutation(len(idx))
            gal = sorted(names[k] for k in perm[:n_gal])
            prb = sorted([names[perm[n_gal]]])
        else:  # KS20: choose settings, all views of a setting go together
            settings = sorted({recs[i].setting for i in idx})
            if len(settings) < 2:
                continue
            perm = rng.permutation(len(settings))
            gal_set, prb_set = settings[perm[0]], settings[perm[1]]
            gal = sorted(recs[i].name for i in idx if recs[i].setting == gal_set)
            prb = sorted(recs[i].name for i in idx if recs[i].setting == prb_set)
        for i in idx:
            if recs[i].name in gal:
                roles[i] = "gallery"
            elif recs[i].name in prb:
                roles[i] = "probe"
        choices[str(pid)] = {"gallery": gal, "probe": prb}
    return roles, choices


# --- windows ---------------------------------------------------------------------------------------
def cut_windows(recs: list[Recording], f: int, offsets: range | list[int], stride: int, dataset: str,
                split: str) -> WindowSet:
    """Windows of ``recs`` (each ``(T, J, 3)``) stacked offset-major, people in id order, windows in time order."""
    J = JOINTS[dataset]
    order = sorted(recs, key=lambda r: (r.pid, r.name))
    wins, pids, rids, offs, starts = [], [], [], [], []
    for s in offsets:
        for r in order:
            w, st = sliding_windows(r.joints, f, stride, s)
            if len(st) == 0:
                continue
            wins.append(w.astype(np.float64))
            pids.append(np.full(len(st), r.pid, np.int64))
            rids.append(np.full(len(st), r.rid, np.int64))
            offs.append(np.full(len(st), s, np.int64))
            starts.append(st.astype(np.int64))
    if not wins:
        return WindowSet(np.zeros((0, f, J, 3)), np.zeros(0, np.int64), dataset, split, LAYOUT_OF[dataset])
    return WindowSet(np.concatenate(wins), np.concatenate(pids), dataset, split, LAYOUT_OF[dataset],
                     recording=np.concatenate(rids), offset=np.concatenate(offs), start=np.concatenate(starts))


def p2_windows(dataset: str, recs: list[Recording], f: int) -> dict[str, WindowSet]:
    """The P2 layout's splits (``DATA_PREP.md`` §3-§4)."""
    by_role: dict[str, list[Recording]] = {}
    for r in recs:
        by_role.setdefault(r.role, []).append(r)
    half = max(1, f // 2)
    out: dict[str, WindowSet] = {}
    if dataset == "UCALGARY":
        run = lambda ks: [r for k in ks for r in by_role.get(f"run{k}", [])]  # noqa: E731
        out["train"] = cut_windows(run(UCALGARY_RUNS["gallery"]), f, range(f), half, dataset, "train")
        for split in ("gallery", "same", "cross"):
            out[split] = cut_windows(run(UCALGARY_RUNS[split]), f, [0], f, dataset, split)
        return out
    train_offsets, train_stride = (([0], f) if dataset == "KGBD" else (range(f), half))
    out["train"] = cut_windows(by_role.get("train", []), f, train_offsets, train_stride, dataset, "train")
    for split in P2_SPLITS[dataset][1:]:
        out[split] = cut_windows(by_role.get(split, []), f, [0], f, dataset, split)
    return out


def cage_windows(dataset: str, recs: list[Recording], f: int, rounds: int = CAGE_ROUNDS) -> dict[str, WindowSet]:
    """The CAGE layout's splits (``CAGE_SPEC.md`` §1.4-§1.5)."""
    if dataset not in CAGE_SPLITS:
        raise OfflineError(f"{dataset} has no CAGE layout; use --layout p2")
    offsets = range(rounds)
    if dataset in ("KGBD", "KS20"):
        groups = {"train": [r for r in recs if r.role != "probe"], "test": [r for r in recs if r.role == "probe"]}
    else:
        groups = {s: [r for r in recs if r.role == s] for s in CAGE_SPLITS[dataset]}
        if dataset == "BIWI":
            test_people = {r.pid for s in ("Walking", "Still") for r in groups[s]}
            groups["train"] = [r for r in groups["train"] if r.pid in test_people]
    return {s: cut_windows(g, f, offsets, f, dataset, s) for s, g in groups.items()}


# --- outputs ---------------------------------------------------------------------------------------
def out_folder(cfg: PrepareConfig) -> Path:
    return Path(cfg.out) / cfg.dataset / str(int(cfg.f))


def manifest_path(cfg: PrepareConfig) -> Path:
    return out_folder(cfg) / f"prepare_{cfg.layout}.json"


def splits_path(cfg: PrepareConfig) -> Path:
    return out_folder(cfg) / "splits.json"


def _dumps(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


def _arguments(cfg: PrepareConfig, folder: Path) -> dict:
    return {"dataset": cfg.dataset, "raw_root": str(folder.resolve()), "f": int(cfg.f), "layout": cfg.layout,
            "seed": int(cfg.seed), "trim": cfg.effective_trim(), "original_trim": bool(cfg.original_trim),
            "rounds": int(cfg.rounds) if cfg.layout == "cage" else None}


def _outputs_intact(manifest: dict, base: Path) -> bool:
    for rel, size in manifest.get("files", {}).items():
        p = base / rel
        if not p.is_file() or p.stat().st_size != size:
            return False
    return True


def _validate(cfg: PrepareConfig) -> None:
    if cfg.dataset not in RAW_DATASETS:
        raise OfflineError(f"--dataset {cfg.dataset!r}: expected one of {', '.join(RAW_DATASETS)}")
    if cfg.layout not in ("p2", "cage"):
        raise OfflineError(f"--layout {cfg.layout!r}: expected cage or p2")
    if cfg.layout == "cage" and cfg.dataset not in CAGE_SPLITS:
        raise OfflineError(f"{cfg.dataset} has no CAGE layout (the original code never read it); use --layout p2")
    if cfg.f < 1:
        raise OfflineError(f"--length must be >= 1, got {cfg.f}")
    if cfg.rounds < 1:
        raise OfflineError(f"--rounds must be >= 1, got {cfg.rounds}")
    if cfg.trim is not None and cfg.trim < 0:
        raise OfflineError(f"--trim must be >= 0, got {cfg.trim}")


def prepare(cfg: PrepareConfig, progress: Callable[[str, int, int | None], None] | None = None,
            cache: dict | None = None) -> Prepared:
    """Build ``<out>/<DS>/<f>/`` from the raw recordings; a no-op when the manifest matches.

    ``progress(stage, advance, total)``: called with ``total`` set once per stage, then with advances.
    ``cache``: a dict kept by the caller across calls (several ``f`` / layouts) so the raw tree is parsed once.
    Raises `OfflineError` / `DatasetError` (one-line, naming the file) on bad input; malformed raw files are
    skipped and listed in the result and in the manifest.
    """
    cfg.dataset = {d.lower(): d for d in RAW_DATASETS}.get(str(cfg.dataset).lower(), cfg.dataset)
    _validate(cfg)
    folder = Path(cfg.raw_root) if cfg.dataset == "UCALGARY" else dataset_folder(cfg.dataset, cfg.raw_root)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder")
    base = out_folder(cfg)
    args = _arguments(cfg, folder)
    fingerprint = _input_fingerprint(folder)
    mpath = manifest_path(cfg)
    if mpath.is_file() and not cfg.force:
        try:
            old = json.loads(mpath.read_text())
        except (ValueError, OSError):
            old = {}
        if (old.get("version") == MANIFEST_VERSION and old.get("arguments") == args
                and old.get("input_fingerprint") == fingerprint and _outputs_intact(old, base)):
            return Prepared(base, {}, [], [tuple(s) for s in old.get("skipped", [])], old.get("notes", []),
                            up_to_date=True, manifest=old)
    _check_other_layout_seed(cfg)

    # 1. read (once per raw tree and trimming when the caller passes a cache, e.g. for several f)
    key = (cfg.dataset, args["raw_root"], fingerprint, cfg.effective_trim(), bool(cfg.original_trim))
    if cache is not None and key in cache:
        raw, skipped, notes, body_map = cache[key]
    elif cfg.dataset == "UCALGARY":
        raw, skipped, notes, body_map = _load_ucalgary(cfg)
    else:
        total = list_raw_files(cfg.dataset, folder)
        if progress:
            progress("read", 0, total)
        raw, skipped, notes, body_map = _load_kinect(cfg, (lambda n: progress("read", n, None)) if progress else None)
    if cache is not None:
        cache[key] = (raw, skipped, notes, body_map)
    if not raw:
        raise DatasetError(f"{folder}: no usable {cfg.dataset} recordings")
    notes = list(notes)

    # 2. split
    roles, choices = choose_roles(cfg.dataset, raw, cfg.seed)
    recs = [Recording(i, r.pid, r.name, role, r.joints, r.setting, r.view)
            for i, (r, role) in enumerate(zip(raw, roles))]

    # 3. windows
    splits = p2_windows(cfg.dataset, recs, cfg.f) if cfg.layout == "p2" else cage_windows(cfg.dataset, recs, cfg.f,
                                                                                          cfg.rounds)
    if cfg.layout == "cage" and cfg.dataset == "BIWI":
        kept = set(splits["train"].pids.tolist())
        dropped = sorted({r.pid for r in recs if r.role == "train"} - kept)
        if dropped:
            notes.append(f"CAGE layout: BIWI training keeps the {len(kept)} people of Walking/Still; "
                         f"{len(dropped)} training-only people left out (CAGE_SPEC §1.5)")
    for name, ws in splits.items():
        if ws.n == 0:
            raise DatasetError(f"{folder}: {cfg.dataset} split {name!r} has no window of f={cfg.f} frames "
                               f"(recordings too short after trimming {cfg.effective_trim()} frames at each end?)")

    # 4. write (data first, manifest last: an interrupted run leaves no manifest and is redone)
    if progress:
        progress("write", 0, len(splits))
    if cfg.layout == "p2":
        from offline.datasets.p2_layout import p2_files, write_p2_split

        files: list[Path] = []
        for name, ws in splits.items():
            write_p2_split(cfg.out, cfg.dataset, cfg.f, name, ws)
            files += list(p2_files(cfg.out, cfg.dataset, cfg.f, name).values())
            if progress:
                progress("write", 1, None)
    else:
        from offline.datasets.cage_layout import split_files, write_cage_dataset

        write_cage_dataset(cfg.out, cfg.dataset, cfg.f, splits)
        files = [p for name in splits for p in split_files(cfg.out, cfg.dataset, cfg.f, name).all_files()]
        if progress:
            progress("write", len(splits), None)

    split_doc = {
        "dataset": cfg.dataset, "seed": int(cfg.seed), "trim": cfg.effective_trim(),
        "original_trim": bool(cfg.original_trim),
        "choices": choices,  # KGBD/KS20: {pid: {gallery: [recording names], probe: [...]}}
        "body_map": {str(k): v for k, v in sorted(body_map.items())},  # KS20 body number -> person id
        "recordings": [{"id": r.rid, "pid": r.pid, "name": r.name, "role": r.role, "frames": int(len(r.joints))}
                       for r in recs],
    }
    write_text(splits_path(cfg), _dumps(split_doc))
    files.append(splits_path(cfg))
    manifest = {
        "version": MANIFEST_VERSION, "arguments": args, "input_fingerprint": fingerprint,
        "windows": {name: {"N": ws.n, "people": int(len(np.unique(ws.pids))),
                           "recordings": int(len(np.unique(ws.recording)))} for name, ws in splits.items()},
        "skipped": [list(s) for s in skipped], "notes": notes,
        "files": {p.relative_to(base).as_posix(): p.stat().st_size for p in sorted(set(files))},
    }
    write_text(mpath, _dumps(manifest))
    return Prepared(base, splits, recs, skipped, notes, manifest=manifest)


def _check_other_layout_seed(cfg: PrepareConfig) -> None:
    """splits.json is shared by both layouts of one <DS>/<f> folder: refuse to change it under the other."""
    other = manifest_path(PrepareConfig(**{**asdict(cfg), "layout": "cage" if cfg.layout == "p2" else "p2"}))
    sp = splits_path(cfg)
    if not (other.is_file() and sp.is_file()):
        return
    try:
        old = json.loads(sp.read_text())
    except (ValueError, OSError):
        return
    which = other.stem.split("_")[1]
    if old.get("seed") != cfg.seed and cfg.dataset in ("KGBD", "KS20"):
        raise OfflineError(f"{sp}: the {which} layout in this folder was prepared with seed "
                        f"{old.get('seed')}; use --seed {old.get('seed')} or another --out")
    if (old.get("trim"), old.get("original_trim")) != (cfg.effective_trim(), bool(cfg.original_trim)):
        raise OfflineError(f"{sp}: the {which} layout in this folder was prepared with --trim {old.get('trim')}"
                        f"{' --original-trim' if old.get('original_trim') else ''}; use the same trimming "
                        f"or another --out")
