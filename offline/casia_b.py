"""Batch conversion of a CASIA-B tree to 14-joint 3D sequences and the CAGE CVE / CME layouts.

Input (``--pose mediapipe``): videos named ``SSS-CC-NN-VVV.<ext>`` anywhere under a root, e.g.
``001/nm-01/090/001-nm-01-090.avi`` or a flat folder: subject ``SSS``, condition ``CC`` in nm/bg/cl,
sequence ``NN``, view ``VVV`` in 000..180 (18° steps). Input (``--pose openpose-json``): folders with that
name holding OpenPose ``*_keypoints.json`` files (one per frame).

Per sequence the main person becomes a ``(T, 14, 3)`` casia14 sequence in the convention of the lifted
CASIA-B files (CAGE_SPEC §7.1): x, y image pixels (y down), z depth relative to the pelvis in the same
pixel units (away from the camera). MediaPipe: 2D landmarks + world-landmark depth rescaled to the 2D size;
OpenPose JSON: `pose.lifting` (Chen & Ramanan matching, or the MLP).

Output (``OUT``)::

    OUT/sequences/SSS-CC-NN-VVV.npz     joints (T,14,3), frames (T,), valid2d (T,14), meta (JSON)
    OUT/Datasets/CASIA_B/{f}/view_{v}/CASIA_B_{train,test}_npy_data/       CVE (one per view that has data)
    OUT/Datasets/CASIA_B_match/{f}/CASIA_B_{train,test}_npy_data/...       CME
    OUT/manifest.json                   settings + one entry per input (ok / failed / skipped, reason)
    OUT/failures.txt                    one line per failed input: path: reason

Splits (our choice; the released files fix theirs, CAGE_SPEC §1.5 [unverified]):
CVE per view: train (= gallery) = ``nm-01..nm-04`` of every subject; test (= probe) = every other sequence.
CME: subjects ``<= cme_train_subjects`` (74 = the usual LT protocol) train the encoder (all conditions and
views); the others are the test set, one folder per condition (``nm``, ``bg``, ``cl``) plus ``test_all``.

A rerun skips inputs whose ``sequences/*.npz`` exists and were made with the same settings; failed inputs
are retried. A failure (unreadable video, no person found, ...) is recorded and never stops the batch.

Sharding (``--shard K/N``, `shard_of`): shard K of N converts only the inputs whose name hashes (CRC-32) to
it, writes their sequences into the common ``OUT/sequences/`` and its manifest to
``OUT/shards/K-of-N.json``, and builds no layout; N jobs can run anywhere that sees the same ``OUT`` (job
arrays, Ray, Dask), in any order. `merge_shards` (``--merge``) then checks that all N shards finished with the
same settings, writes ``OUT/manifest.json`` and ``failures.txt`` from theirs, and builds the layouts once.
"""
from __future__ import annotations

import json
import os
import re
import time
import traceback
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from offline.datasets.base import DatasetError, WindowSet
from offline.errors import OfflineError

NAME_RE = re.compile(r"^(\d{3})-(nm|bg|cl)-(\d{2})-(\d{3})$")
CONDITIONS = ("nm", "bg", "cl")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".mpg", ".mpeg")
MANIFEST = "manifest.json"
FAILURES = "failures.txt"



@dataclass(frozen=True)
class CasiaName:
    subject: int
    condition: str
    seq: int
    angle: int

    @property
    def stem(self) -> str:
        return f"{self.subject:03d}-{self.condition}-{self.seq:02d}-{self.angle:03d}"

    @property
    def view(self) -> int:
        """CVE view index v (angle = 18·v degrees)."""
        return self.angle // 18

    @property
    def recording(self) -> int:
        """A unique int per sequence: SSS C NN VVV as digits (condition nm=1, bg=2, cl=3)."""
        return ((self.subject * 10 + CONDITIONS.index(self.condition) + 1) * 100 + self.seq) * 1000 + self.angle


def parse_name(name: str) -> CasiaName | None:
    """``'001-nm-01-090'`` (extension ignored) -> `CasiaName`; None when the name does not fit."""
    stem = Path(name).name
    for suf in VIDEO_SUFFIXES:
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
    m = NAME_RE.match(stem)
    if not m:
        return None
    angle = int(m.group(4))
    if angle % 18 or angle > 180:
        return None
    return CasiaName(int(m.group(1)), m.group(2), int(m.group(3)), angle)


@dataclass
class Settings:
    """Everything that changes the converted sequences (a rerun with other settings is refused)."""

    pose: str = "mediapipe"  # mediapipe | openpose-json
    lifter: str = "matching"  # openpose-json only: matching | mlp
    lifter_file: str = ""
    k: int = 1
    smooth: float = 0.0
    min_conf: float = 0.05
    max_frames: int = 0  # 0 = whole video

    def key(self) -> dict:
        return asdict(self)


@dataclass
class SplitConfig:
    cve_f: tuple[int, ...] = (20,)
    cme_f: tuple[int, ...] = (50,)
    cve_train: tuple[str, ...] = ("nm-01", "nm-02", "nm-03", "nm-04")
    cme_train_subjects: int = 74
    stride: int = 1


@dataclass
class Item:
    path: Path
    name: CasiaName | None
    reason: str = ""  # why it cannot be used, when name is None


def discover(root, pose: str) -> list[Item]:
    """CASIA-B inputs under ``root``: video files or OpenPose JSON folders, sorted by name.

    Video-like files (or JSON folders) whose name does not follow ``SSS-CC-NN-VVV`` are returned with a
    reason so that they show up in the failure report.
    """
    root = Path(root)
    if not root.is_dir():
        raise OfflineError(f"{root}: not a folder (expected a CASIA-B tree)")
    items = []
    if pose == "openpose-json":
        dirs = sorted({p.parent for p in root.rglob("*_keypoints.json")})
        for d in dirs:
            n = parse_name(d.name)
            items.append(Item(d, n, "" if n else "folder name is not SSS-CC-NN-VVV"))
    else:
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
                n = parse_name(p.name)
                items.append(Item(p, n, "" if n else "file name is not SSS-CC-NN-VVV.<ext>"))
    return sorted(items, key=lambda it: (it.name is None, it.name.stem if it.name else str(it.path)))


# ---------------------------------------------------------------------------------------------------------
# One sequence (runs in a worker process)
# ---------------------------------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(settings: dict, own_process: bool = True) -> None:
    if own_process:  # one thread per worker: the workers are the parallelism
        import torch

        torch.set_num_threads(1)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER["settings"] = Settings(**settings)
    _WORKER["lifter"] = None


def _lifter(s: Settings):
    if _WORKER.get("lifter") is None:
        from offline.lift_library import make_lifter

        _WORKER["lifter"] = make_lifter(s.lifter, library=s.lifter_file if s.lifter == "matching" else None,
                                        model=s.lifter_file if s.lifter == "mlp" else None, k=s.k, device="cpu")
    return _WORKER["lifter"]


def mediapipe_pixels_depth(track) -> tuple[np.ndarray, np.ndarray]:
    """A `pose.extract` track -> casia14 ``(T, 14, 3)`` (pixels + world depth rescaled to the 2D size), valid.

    ``valid`` marks joints MediaPipe saw (visibility >= 0.5); the others are its estimates, kept as they are.
    Per frame the MediaPipe world landmarks (metres, y down, z away) are converted to casia14 like the 2D
    keypoints; depth = (z − z_pelvis) · s with s = RMS 2D size (px) / RMS world x-y size (m).
    """
    from pose.convert import convert
    from pose.lifting import normalise_2d, root_of

    vis = np.where(np.isfinite(track.visibility), track.visibility, 0.0)
    xy, _ = convert(track.keypoints2d, "mediapipe33", "casia14")  # MediaPipe places every landmark
    _, v2 = convert(track.keypoints2d, "mediapipe33", "casia14", visibility=vis, min_visibility=0.5)
    w, _ = convert(track.mediapipe33, "mediapipe33", "casia14")
    ok = np.isfinite(xy).all(-1) & np.isfinite(w).all(-1)
    out = np.full(xy.shape[:-1] + (3,), np.nan)
    full = ok.all(1)
    if full.any():
        _, _, s2 = normalise_2d(xy[full])
        _, _, s3 = normalise_2d(w[full][..., :2])
        depth = (w[full][..., 2] - root_of(w[full])[:, 2:3]) * (s2 / s3)[:, None]
        out[full] = np.concatenate([xy[full], depth[..., None]], -1)
    return out, v2 & full[:, None]


def convert_one(path: str, stem: str, out_npz: str) -> dict:
    """Convert one input; returns ``{"status": "ok"|"failed", ...}`` and never raises."""
    s: Settings = _WORKER["settings"]
    t0 = time.perf_counter()
    try:
        if s.pose == "mediapipe":
            joints, frames, valid = _from_video(Path(path), s)
        else:
            joints, frames, valid = _from_openpose(Path(path), s)
        from pose.io import save_npz

        meta = {"source": str(path), "name": stem, "settings": s.key(), "layout": "casia14",
                "axes": "x, y image pixels (y down); z depth relative to the pelvis, pixel units"}
        save_npz(out_npz, {"joints": joints, "frames": frames, "valid2d": valid, "meta": np.asarray(json.dumps(meta))})
        return {"status": "ok", "frames": int(len(joints)), "seconds": round(time.perf_counter() - t0, 3)}
    except Exception as exc:  # noqa: BLE001 - every failure is reported, the batch goes on
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        for prefix in (f"{path}: ", f"video {path}: "):
            msg = msg[len(prefix):] if msg.startswith(prefix) else msg
        known = type(exc).__name__ in {"SourceError", "DatasetError", "LiftError", "OfflineError", "ValueError"}
        return {"status": "failed", "reason": msg if known else f"{type(exc).__name__}: {msg}",
                "trace": "" if known else traceback.format_exc(limit=3),
                "seconds": round(time.perf_counter() - t0, 3)}


def _from_video(path: Path, s: Settings):
    from pose.extract import extract
    from pose.lifting import LiftError, fill_missing_2d
    from pose.sources import SourceError

    res = extract(path, layouts=("casia14",), progress=False, max_frames=s.max_frames or None)
    if not res.tracks:
        raise SourceError(f"{path}: no person found in {res.n_frames} frames")
    track = res.main_track()
    xyz, valid = mediapipe_pixels_depth(track)
    keep = np.isfinite(xyz).all((1, 2))
    if keep.sum() < 2:
        raise SourceError(f"{path}: person found in {int(keep.sum())} frame(s) only")
    first, last = np.flatnonzero(keep)[[0, -1]]
    xyz, valid, frames = xyz[first:last + 1], valid[first:last + 1], track.frames[first:last + 1]
    try:  # gaps inside the span: interpolate x, y and z over time
        xy = fill_missing_2d(xyz[..., :2])
        z = fill_missing_2d(np.stack([xyz[..., 2], np.zeros(xyz.shape[:2])], -1))[..., 0]
    except LiftError as exc:
        raise SourceError(f"{path}: {exc}") from None
    return np.concatenate([xy, z[..., None]], -1), np.asarray(frames, dtype=np.int64), valid


def _from_openpose(path: Path, s: Settings):
    from offline.lift_library import lift_openpose_dir

    person = lift_openpose_dir(path, _lifter(s), s.smooth, min_conf=s.min_conf, min_frames=2)[0]
    return person["joints"], np.asarray(person["frames"], dtype=np.int64), person["valid2d"]


# ---------------------------------------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------------------------------------
@dataclass
class BatchResult:
    out: Path
    converted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    datasets: dict = field(default_factory=dict)  # what was written


def shard_of(item: Item, n: int) -> int:
    """The shard (1..n) an input belongs to: CRC-32 of its name, so every machine splits a tree alike."""
    key = item.name.stem if item.name is not None else Path(item.path).name
    return zlib.crc32(key.encode("utf-8")) % n + 1


def parse_shard(text: str) -> tuple[int, int]:
    """``'K/N'`` -> ``(K, N)`` with 1 <= K <= N (an `OfflineError` otherwise)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise OfflineError(f"--shard must be K/N with 1 <= K <= N, e.g. 3/8 (got {text!r})")
    return int(m.group(1)), int(m.group(2))


def _shard_manifest(out: Path, shard: tuple[int, int]) -> Path:
    return out / "shards" / f"{shard[0]}-of-{shard[1]}.json"


def _load_manifest(out: Path, path: Path | None = None) -> dict:
    p = path or out / MANIFEST
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise OfflineError(f"{p}: unreadable manifest ({exc}); remove it or use another output folder") from None


def convert_tree(root, out, settings: Settings, splits: SplitConfig, workers: int = 2, force: bool = False,
                 progress: bool = True, log=print, shard: tuple[int, int] | None = None) -> BatchResult:
    """Convert every CASIA-B input under ``root`` into ``out`` (see the module docstring); with ``shard=(K,
    N)`` only shard K's inputs, without building the layouts (`merge_shards` does)."""
    from cages.io import write_json, write_text

    out = Path(out)
    items = discover(root, settings.pose)
    if not items:
        raise OfflineError(f"{root}: no CASIA-B {'OpenPose JSON folders' if settings.pose == 'openpose-json' else 'videos'}"
                        f" found")
    manifest_path = out / MANIFEST
    if shard is not None:
        items = [it for it in items if shard_of(it, shard[1]) == shard[0]]
        manifest_path = _shard_manifest(out, shard)
        manifest_path.parent.mkdir(parents=True, exist_ok=True)
    if settings.pose == "openpose-json":
        from offline.lift_library import make_lifter

        make_lifter(settings.lifter, settings.lifter_file if settings.lifter == "matching" else None,
                    settings.lifter_file if settings.lifter == "mlp" else None, settings.k, "cpu")  # fail early
    manifest = _load_manifest(out, manifest_path)
    if manifest and manifest.get("settings") != settings.key():
        if not force:
            raise OfflineError(f"{manifest_path}: made with other settings {manifest.get('settings')}; "
                            f"use --force to redo everything or choose another --out")
        manifest = {}
    entries: dict = dict(manifest.get("items", {})) if manifest else {}
    seq_dir = out / "sequences"
    seq_dir.mkdir(parents=True, exist_ok=True)
    result = BatchResult(out)
    todo = []
    for it in items:
        if it.name is None:
            result.failed.append((str(it.path), it.reason))
            entries[str(it.path)] = {"status": "failed", "reason": it.reason}
            continue
        npz = seq_dir / f"{it.name.stem}.npz"
        prev = entries.get(it.name.stem)
        if not force and npz.is_file() and prev and prev.get("status") == "ok":
            result.skipped.append(it.name.stem)
            continue
        todo.append(it)

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def save_manifest(finished: bool) -> None:
        write_json(manifest_path, {"format": "cagereid-casia-b", "version": 1, "root": str(Path(root).resolve()),
                                   "settings": settings.key(), "splits": asdict(splits), "started": started,
                                   "finished": finished, "items": entries, "datasets": result.datasets,
                                   "shard": list(shard) if shard else None})

    def record(it: Item, r: dict) -> None:
        r["source"] = str(it.path)
        entries[it.name.stem] = r
        if r["status"] == "ok":
            result.converted.append(it.name.stem)
        else:
            result.failed.append((str(it.path), r["reason"]))
        save_manifest(False)

    if todo:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, disable=not progress) as bar:
            task = bar.add_task(f"CASIA-B ({settings.pose})", total=len(todo))
            if workers <= 1:  # in this process: no start-up cost, easy to debug
                saved = dict(_WORKER)
                _init_worker(settings.key(), own_process=False)
                try:
                    for it in todo:
                        record(it, convert_one(str(it.path), it.name.stem, str(seq_dir / f"{it.name.stem}.npz")))
                        bar.advance(task)
                finally:
                    _WORKER.clear()
                    _WORKER.update(saved)
            else:
                import multiprocessing as mp

                ctx = mp.get_context("spawn")  # no fork after torch/OpenMP; mediapipe is created per worker
                with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                         initializer=_init_worker, initargs=(settings.key(),)) as pool:
                    futs = {pool.submit(convert_one, str(it.path), it.name.stem,
                                        str(seq_dir / f"{it.name.stem}.npz")): it for it in todo}
                    for fut in as_completed(futs):
                        try:
                            r = fut.result()
                        except Exception as exc:  # noqa: BLE001 - a crashed worker is one failed item
                            r = {"status": "failed", "reason": f"worker crashed: {type(exc).__name__}: {exc}"}
                        record(futs[fut], r)
                        bar.advance(task)
    if shard is not None:  # the layouts need every shard: merge_shards builds them
        save_manifest(True)
        return result
    result.datasets = build_datasets(out, entries, splits, log=log)
    save_manifest(True)
    failures = sorted(result.failed)
    write_text(out / FAILURES, "".join(f"{p}: {why}\n" for p, why in failures))
    return result


def merge_shards(out, log=print) -> BatchResult:
    """After every ``--shard K/N`` job finished: one ``manifest.json`` + ``failures.txt`` from the shards'
    manifests and the CVE / CME layouts from all their sequences. Refuses missing or unfinished shards and
    shards made with other settings, splits or N."""
    from cages.io import write_json, write_text

    out = Path(out)
    files = sorted((out / "shards").glob("*-of-*.json"))
    if not files:
        raise OfflineError(f"{out / 'shards'}: no shard manifests (run cagereid casia-b ... --shard K/N first)")
    shards = {}
    for f in files:
        m = _load_manifest(out, f)
        k, n = (m.get("shard") or [0, 0])
        shards[(int(k), int(n))] = m
    ns = {n for _, n in shards}
    if len(ns) != 1:
        raise OfflineError(f"{out / 'shards'}: shards of different splits {sorted(ns)} (one N per output folder)")
    n = ns.pop()
    missing = [k for k in range(1, n + 1) if (k, n) not in shards]
    if missing:
        raise OfflineError(f"{out / 'shards'}: shard(s) {', '.join(f'{k}/{n}' for k in missing)} missing")
    unfinished = [k for (k, _), m in sorted(shards.items()) if not m.get("finished")]
    if unfinished:
        raise OfflineError(f"{out / 'shards'}: shard(s) {', '.join(f'{k}/{n}' for k in unfinished)} not finished")
    first = shards[(1, n)]
    for (k, _), m in sorted(shards.items()):
        for field_name in ("settings", "splits"):  # the root may be mounted elsewhere on another machine
            if m.get(field_name) != first.get(field_name):
                raise OfflineError(f"{out / 'shards'}: shard {k}/{n} has other {field_name} than shard 1/{n}")
    entries: dict = {}
    for _, m in sorted(shards.items()):
        entries.update(m.get("items", {}))
    splits = SplitConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in first["splits"].items()})
    result = BatchResult(out)
    for stem, e in sorted(entries.items()):
        if e.get("status") == "ok":
            result.converted.append(stem)
        else:
            result.failed.append((e.get("source", stem), e.get("reason", "")))
    result.datasets = build_datasets(out, entries, splits, log=log)
    write_json(out / MANIFEST, {"format": "cagereid-casia-b", "version": 1, "root": first.get("root"),
                                "settings": first["settings"], "splits": first["splits"],
                                "started": min(m.get("started", "") for m in shards.values()),
                                "finished": True, "items": entries, "datasets": result.datasets,
                                "merged_shards": n})
    write_text(out / FAILURES, "".join(f"{p}: {why}\n" for p, why in sorted(result.failed)))
    return result


# ---------------------------------------------------------------------------------------------------------
# CVE / CME layouts
# ---------------------------------------------------------------------------------------------------------
def load_sequences(out: Path, entries: dict) -> list[tuple[CasiaName, np.ndarray]]:
    """The converted sequences a manifest lists as ok. The manifest is not trusted for paths: an entry is read
    only when its key is exactly a CASIA-B name, and its file is ``out/sequences/<that name>.npz``."""
    seqs = []
    for stem, e in sorted(entries.items()):
        if not isinstance(e, dict) or e.get("status") != "ok":
            continue
        name = parse_name(stem)
        if name is None or name.stem != stem:  # e.g. "../../elsewhere/001-nm-01-090": not a plain name
            continue
        p = out / "sequences" / f"{name.stem}.npz"
        if not p.is_file():
            continue
        with np.load(p, allow_pickle=False) as z:
            seqs.append((name, z["joints"].astype(np.float64)))
    return seqs


def _windows(seqs, f: int, stride: int, dataset: str, split: str) -> WindowSet:
    from cages.windows import sliding_windows

    ws, pids, rec, start = [], [], [], []
    for name, joints in seqs:
        w, st = sliding_windows(joints, f, stride)
        ws.append(w)
        pids += [name.subject] * len(w)
        rec += [name.recording] * len(w)
        start += st.tolist()
    windows = np.concatenate(ws) if ws else np.zeros((0, f, 14, 3))
    return WindowSet(windows, np.asarray(pids, dtype=np.int64), dataset, split, "casia14",
                     recording=np.asarray(rec), offset=np.zeros(len(pids)), start=np.asarray(start))


def build_datasets(out: Path, entries: dict, splits: SplitConfig, log=print) -> dict:
    """(Re)write the CVE and CME layouts from every converted sequence; returns what was written/skipped."""
    from offline.datasets.cage_layout import write_cage_dataset

    seqs = load_sequences(out, entries)
    root = out / "Datasets"
    written: dict = {"CASIA_B": {}, "CASIA_B_match": {}, "not_written": []}
    for f in splits.cve_f:
        for v in range(11):
            at_view = [(n, j) for n, j in seqs if n.view == v]
            if not at_view:
                continue
            tr = [(n, j) for n, j in at_view if f"{n.condition}-{n.seq:02d}" in splits.cve_train]
            te = [(n, j) for n, j in at_view if f"{n.condition}-{n.seq:02d}" not in splits.cve_train]
            sets = {"train": _windows(tr, f, splits.stride, "CASIA_B", "train"),
                    "test": _windows(te, f, splits.stride, "CASIA_B", "test")}
            empty = [k for k, w in sets.items() if w.n == 0]
            if empty:
                written["not_written"].append(f"CASIA_B f={f} view_{v}: no {'/'.join(empty)} windows")
                continue
            write_cage_dataset(root, "CASIA_B", f, sets, view=v)
            written["CASIA_B"][f"{f}/view_{v}"] = {k: w.n for k, w in sets.items()}
    for f in splits.cme_f:
        tr = [(n, j) for n, j in seqs if n.subject <= splits.cme_train_subjects]
        sets = {"train": _windows(tr, f, splits.stride, "CASIA_B_match", "train")}
        for c in CONDITIONS:
            te = [(n, j) for n, j in seqs if n.subject > splits.cme_train_subjects and n.condition == c]
            sets[c] = _windows(te, f, splits.stride, "CASIA_B_match", c)
        empty = [k for k, w in sets.items() if w.n == 0]
        if empty:
            written["not_written"].append(f"CASIA_B_match f={f}: no {'/'.join(empty)} windows")
            continue
        sets["test_all"] = _windows([(n, j) for n, j in seqs if n.subject > splits.cme_train_subjects], f,
                                    splits.stride, "CASIA_B_match", "test_all")
        write_cage_dataset(root, "CASIA_B_match", f, sets)
        written["CASIA_B_match"][str(f)] = {k: w.n for k, w in sets.items()}
    for line in written["not_written"]:
        log(f"not written: {line}")
    return written


def summary_lines(res: BatchResult) -> list[str]:
    lines = [f"converted {len(res.converted)}, skipped (already done) {len(res.skipped)}, failed {len(res.failed)}"]
    lines += [f"  failed {p}: {why}" for p, why in sorted(res.failed)]
    for ds in ("CASIA_B", "CASIA_B_match"):
        for key, counts in res.datasets.get(ds, {}).items():
            lines.append(f"  {ds}/{key}: " + ", ".join(f"{k} {n} windows" for k, n in counts.items()))
    lines.append(f"manifest: {res.out / MANIFEST}; failures: {res.out / FAILURES}")
    return lines


__all__ = ["CasiaName", "parse_name", "discover", "Settings", "SplitConfig", "convert_tree", "build_datasets",
           "merge_shards", "shard_of", "parse_shard", "DatasetError"]
