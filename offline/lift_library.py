"""The 3D pose library of the 2D→3D lifters, its held-out split and the MPJPE evaluation.

Sources of real and synthetic 3D walking poses, all converted to the 14-joint ``casia14`` layout and to one
world frame (metres, y up, right-handed, pelvis = mid-hip at the origin of every pose):

* ``ucalgary``: UCalgary Kinect v2 skeletons (``../shared/data/ucalgary_gait``; Kinect camera space is
  already y-up and right-handed). Subjects in ``held_out`` (default 11-14) are kept out of the library and
  used for evaluation only; ``sub10`` (a copy of ``sub4``) is dropped by the loader.
* ``mediapipe``: MediaPipe world landmarks (metres, hip-centred, x right, y down, z away from the camera)
  extracted from real videos (default ``../shared/data/video/openpose_walk.avi``), turned y-up by a
  180° rotation about x (``(x, -y, -z)``, no mirroring).
* ``synthetic``: `pose.synthetic` walkers (Kinect-like camera space, right-handed, y up).

`build_library` projects every pose through random virtual cameras (`pose.lifting.make_library_pairs`) and
writes one ``.npz``: the 3D poses with their source/subject, and the (normalised 2D, normalised depth)
pairs the matching lifter searches and the MLP trains on.

`evaluate` measures MPJPE on projections of the held-out real sequences: root-aligned (pelvis), in mm.
The lifters return depth in pixel units relative to the pelvis; with the virtual camera's focal length f and
the true pelvis depth Z (the "known scale"), a lifted joint is ``((u-u_root)·Z/f, (v-v_root)·Z/f, d·Z/f)``
metres in the camera frame. This is the error of the lifting itself; the oracle row (true depth through
the same weak-perspective back-projection) shows the floor of that protocol.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from offline.datasets.base import DatasetError
from pose import lifting as L
from pose.camera import project, relative_depth_px

#: Where `cagereid lift` keeps its library and MLP checkpoint unless told otherwise (relative to the working dir).
WORKDIR = Path("runs/lift")
DEFAULT_LIBRARY = WORKDIR / "library.npz"
DEFAULT_MLP = WORKDIR / "mlp.pt"
HELD_OUT = (11, 12, 13, 14)
CASIA_VIEWS = tuple(range(0, 181, 18))
SOURCES = ("ucalgary", "mediapipe", "synthetic")


@dataclass
class PoseSequence:
    """One 3D walk in the library frame: ``joints (T, 14, 3)`` metres, y up (not root-centred)."""

    joints: np.ndarray
    source: str
    subject: int = -1
    recording: int = -1


@dataclass
class LibraryConfig:
    """What goes into the library (commented defaults; saved inside the library file)."""

    ucalgary_root: str = ""  # the ucalgary_gait folder (the ucalgary source needs it)
    held_out: tuple[int, ...] = HELD_OUT  # UCalgary subjects kept for evaluation
    videos: tuple[str, ...] = ()  # videos whose MediaPipe world landmarks join the library
    synthetic_identities: int = 20
    synthetic_walks: int = 2  # walks per identity
    synthetic_frames: int = 90
    frame_step: int = 2  # keep every n-th frame (30 fps walks are redundant)
    views: int = 8  # virtual cameras per pose
    mirror: bool = True  # add the left/right mirror image of every pose
    seed: int = 0
    sources: tuple[str, ...] = SOURCES


# ---------------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------------
def ucalgary_sequences(root, subjects=None, exclude=()) -> list[PoseSequence]:
    """UCalgary walks (runs 1-6) converted to casia14; ``subjects`` None = all but ``exclude``."""
    from offline.datasets.ucalgary import load_ucalgary
    from pose.convert import convert

    data = load_ucalgary(root)
    out = []
    for rec in data.recordings:
        if (subjects is not None and rec.subject not in subjects) or rec.subject in exclude:
            continue
        joints, valid = convert(rec.joints, "ucalgary18", "casia14")
        keep = valid.all(axis=1)
        if keep.sum() < 2:
            continue
        out.append(PoseSequence(joints[keep], "ucalgary", rec.subject, rec.recording_id))
    return out


def mediapipe_world_to_library(world33) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe world landmarks ``(T, 33, 3)`` (y down, z away) -> casia14 y-up ``(T, 14, 3)``, valid."""
    from pose.convert import convert

    w = np.asarray(world33, dtype=np.float64) * np.array([1.0, -1.0, -1.0])  # 180° about x: y up, proper rotation
    return convert(w, "mediapipe33", "casia14")


def mediapipe_sequences(videos, cache_dir=None, max_frames: int | None = None) -> list[PoseSequence]:
    """MediaPipe world landmarks of the main person in each video (cached as ``<stem>_world.npz``)."""
    out = []
    for k, video in enumerate(videos):
        video = Path(video)
        if not video.is_file():
            raise DatasetError(f"{video}: video for the lifting library not found")
        world = _mediapipe_world(video, cache_dir, max_frames)
        joints, valid = mediapipe_world_to_library(world)
        keep = valid.all(axis=1)
        if keep.sum() >= 2:
            out.append(PoseSequence(joints[keep], "mediapipe", -1 - k, k))
    return out


def _mediapipe_world(video: Path, cache_dir, max_frames) -> np.ndarray:
    cache = Path(cache_dir) / f"{video.stem}_world.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return z["world"]
    import cv2
    import mediapipe as mp

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise DatasetError(f"{video}: cannot open video")
    frames = []
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
        while max_frames is None or len(frames) < max_frames:
            ok, img = cap.read()
            if not ok:
                break
            res = pose.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            if res.pose_world_landmarks is None:
                frames.append(np.full((33, 3), np.nan))
            else:
                lm = res.pose_world_landmarks.landmark
                xyz = np.array([[p.x, p.y, p.z] for p in lm])
                frames.append(xyz)
    cap.release()
    world = np.stack(frames) if frames else np.zeros((0, 33, 3))
    if cache is not None:
        from cages.io import save_npz

        save_npz(cache, world=world)
    return world


def synthetic_sequences(n_identities: int, walks: int, frames: int, seed: int) -> list[PoseSequence]:
    """`pose.synthetic` walkers in casia14 (Kinect-like camera space: right-handed, y up = the library frame).

    Guard: an earlier `pose.synthetic` used a left-handed frame (x image-right), which makes every walker
    the mirror image of a real person. A walk that faces backwards (`facing_agreement` < 0) is therefore
    mirrored in x here rather than dropped.
    """
    from pose import synthetic

    out = []
    for ident in synthetic.make_identities(n_identities, seed=seed):
        for w in range(walks):
            res = synthetic.walk(ident, frames, layout="casia14", seed=seed * 1000 + w, noise_m=0.0,
                                 heading_range=(-180.0, 180.0))
            j = np.asarray(res.joints, dtype=np.float64)
            j = j[np.isfinite(j).all(axis=(1, 2))]
            seq = PoseSequence(j, "synthetic", 1000 + ident.pid, 1000 * (ident.pid + 1) + w)
            if facing_agreement(seq) < 0:
                seq.joints = j * np.array([-1.0, 1.0, 1.0])
            out.append(seq)
    return out


def facing_agreement(seq: PoseSequence) -> float:
    """Mean cosine between where the body faces and where it goes (or where the nose points).

    In a right-handed y-up frame the body's forward axis is (L-hip − R-hip) × up. A walk compares it with
    its horizontal displacement; a hip-centred source that does not move (MediaPipe world landmarks)
    compares it with the horizontal head − neck direction (head = nose, in front of the neck). A mirrored
    source (left/right labels swapped, or a left-handed frame) gives a negative value.
    """
    j = np.asarray(seq.joints, dtype=np.float64)
    left = j[:, 11] - j[:, 8]  # L-hip - R-hip
    fwd = np.cross(left, np.array([0.0, 1.0, 0.0]))
    fwd[:, 1] = 0.0
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True) + 1e-12
    root = L.root_of(j)
    move = root[-1] - root[0]
    move[1] = 0.0
    if np.linalg.norm(move) >= 0.3:
        return float((fwd @ (move / np.linalg.norm(move))).mean())
    nose = j[:, 0] - j[:, 1]
    nose[:, 1] = 0.0
    nose /= np.linalg.norm(nose, axis=1, keepdims=True) + 1e-12
    return float((fwd * nose).sum(1).mean())


def drop_mirrored(seqs: list[PoseSequence], log=print) -> list[PoseSequence]:
    """Leave out walks whose body faces backwards along the walk (`facing_agreement` < 0).

    Real case: UCalgary ``sub7/Run1`` walks *away* from the Kinect, which assumes a frontal body and so
    labels the left side right: a mirrored pose that would teach the lifter the wrong depth order.
    """
    keep = []
    for s in seqs:
        a = facing_agreement(s)
        if a == a and a < 0:  # not NaN and negative
            log(f"{s.source} walk {s.recording} (subject {s.subject}) left out: body faces backwards along "
                f"its walk (mirrored left/right labels, agreement {a:.2f})")
        else:
            keep.append(s)
    return keep


# ---------------------------------------------------------------------------------------------------------
# Library
# ---------------------------------------------------------------------------------------------------------
_SOURCE_CODE = {s: i for i, s in enumerate(SOURCES)}


def collect_sequences(cfg: LibraryConfig, cache_dir=None, log=print) -> list[PoseSequence]:
    seqs: list[PoseSequence] = []
    if "ucalgary" in cfg.sources:
        if not cfg.ucalgary_root:
            raise DatasetError("the ucalgary source needs the ucalgary_gait folder (--data-root), or leave it out "
                               "of --sources")
        root = Path(cfg.ucalgary_root)
        if root.is_dir():
            got = ucalgary_sequences(root, exclude=tuple(cfg.held_out))
            log(f"ucalgary: {len(got)} walks of subjects {sorted({s.subject for s in got})} "
                f"(held out: {list(cfg.held_out)})")
            seqs += got
        else:
            log(f"ucalgary: {root} not found, skipped")
    if "mediapipe" in cfg.sources:
        if not cfg.videos:
            raise DatasetError("the mediapipe source needs --video FILE..., or leave it out of --sources")
        videos = [v for v in cfg.videos if Path(v).is_file()]
        for v in cfg.videos:
            if not Path(v).is_file():
                log(f"mediapipe: {v} not found, skipped")
        if videos:
            got = mediapipe_sequences(videos, cache_dir)
            log(f"mediapipe: {sum(len(s.joints) for s in got)} poses from {len(videos)} video(s)")
            seqs += got
    if "synthetic" in cfg.sources and cfg.synthetic_identities > 0:
        got = synthetic_sequences(cfg.synthetic_identities, cfg.synthetic_walks, cfg.synthetic_frames, cfg.seed)
        log(f"synthetic: {len(got)} walks of {cfg.synthetic_identities} identities")
        seqs += got
    seqs = drop_mirrored(seqs, log)
    if not seqs:
        raise DatasetError("no 3D walking data for the lifting library (no UCalgary folder, video or synthetic)")
    return seqs


def build_library(cfg: LibraryConfig, out_path, cache_dir=None, log=print) -> dict:
    """Collect the sources, project them, and write the library ``.npz`` atomically. Returns a summary."""
    from cages.io import save_npz

    seqs = collect_sequences(cfg, cache_dir, log)
    poses, source, subject = [], [], []
    for s in seqs:
        j = s.joints[:: max(1, cfg.frame_step)]
        poses.append(j - L.root_of(j)[:, None, :])
        source.append(np.full(len(j), _SOURCE_CODE[s.source]))
        subject.append(np.full(len(j), s.subject))
    poses = np.concatenate(poses)
    pairs = L.make_library_pairs(poses, cfg.views, seed=cfg.seed, mirror=cfg.mirror)
    save_npz(out_path, poses=poses.astype(np.float32), source=np.concatenate(source), subject=np.concatenate(subject),
             x2d=pairs["x2d"], depth=pairs["depth"], pose_index=pairs["pose_index"],
             sources=np.asarray(SOURCES), held_out=np.asarray(cfg.held_out, dtype=np.int64),
             config=np.asarray(repr(cfg)))
    counts = {name: int((np.concatenate(source) == code).sum()) for name, code in _SOURCE_CODE.items()}
    summary = {"poses": int(len(poses)), "pairs": int(len(pairs["x2d"])), "per_source": counts,
               "path": str(out_path)}
    log(f"library: {summary['poses']} poses x {cfg.views} cameras{' x 2 (mirror)' if cfg.mirror else ''} "
        f"= {summary['pairs']} pairs -> {out_path}")
    return summary


def load_pairs(path) -> tuple[np.ndarray, np.ndarray]:
    """The (x2d, depth) training pairs of a library file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: lifting library not found (run `cagereid lift build-library`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return z["x2d"], z["depth"]
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{path}: not a lifting library ({exc})") from None


# ---------------------------------------------------------------------------------------------------------
# Evaluation: MPJPE on projections of held-out real walks
# ---------------------------------------------------------------------------------------------------------
@dataclass
class EvalProjection:
    """Projections of held-out walks: pixels ``uv`` and camera-frame truth ``cam`` per sequence."""

    uv: list[np.ndarray]  # (T, 14, 2)
    cam: list[np.ndarray]  # (T, 14, 3) metres
    view: np.ndarray  # (S,) degrees relative to the walking direction (NaN = random camera)
    focal: float
    subject: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def project_sequences(seqs: list[PoseSequence], views=CASIA_VIEWS, distance: float = 6.0,
                      elevation: float = 8.0, focal: float = 1000.0, random_cams: int = 2,
                      seed: int = 0) -> EvalProjection:
    """One static camera per (walk, view): CASIA-B-like views 0°..180° (0° = walking towards the camera,
    90° = side view), at ``distance`` m from the walk's middle, ``elevation`` degrees up; plus
    ``random_cams`` cameras with random azimuth/elevation/distance per walk."""
    rng = np.random.default_rng(seed)
    uv, cam, view, subj = [], [], [], []
    for s in seqs:
        j = s.joints
        root = L.root_of(j)
        mid = root[len(root) // 2]
        move = root[-1] - root[0]
        heading = math.atan2(move[0], move[2]) if np.hypot(move[0], move[2]) > 0.2 else 0.0
        plans = [(math.radians(v), math.radians(elevation), distance, v) for v in views]
        for _ in range(random_cams):
            plans.append((rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(-5, 30)), rng.uniform(5, 10), np.nan))
        for az, el, dist, v in plans:
            R, C = L.look_at(mid[None], heading + az, el, dist)
            c = L.to_camera(j, np.repeat(R, len(j), 0), np.repeat(C, len(j), 0))
            if (c[..., 2] < 0.5).any():
                continue  # the walker passes behind/through the camera
            uv.append(project(c, focal))
            cam.append(c)
            view.append(v)
            subj.append(s.subject)
    return EvalProjection(uv, cam, np.asarray(view, dtype=np.float64), focal, np.asarray(subj, dtype=np.int64))


def metric_from_depth(uv: np.ndarray, depth_px: np.ndarray, z_root: np.ndarray, focal: float) -> np.ndarray:
    """Root-relative metres from pixels ``(T,14,2)``, pixel-unit depth ``(T,14)`` and the pelvis depth ``(T,)``."""
    rel = uv - L.root_of(uv)[:, None, :]
    return np.concatenate([rel, depth_px[..., None]], -1) * (z_root / focal)[:, None, None]


def mpjpe_mm(pred_rel: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """Per-frame MPJPE (mm) after pelvis alignment of both."""
    gt = cam - L.root_of(cam)[:, None, :]
    pred = pred_rel - L.root_of(pred_rel)[:, None, :]
    return 1000.0 * np.linalg.norm(pred - gt, axis=-1).mean(-1)


def evaluate(lifters: dict, proj: EvalProjection, smooth_sigma: float = 2.0, noise: float = 0.0,
             seed: int = 0, timings: dict | None = None, on_walk=None) -> dict:
    """MPJPE (mm) of each lifter (plus ``zero-depth`` and ``oracle`` rows) on the projected walks.

    Every walk is lifted once per lifter; "raw" scores that, "smoothed" the same depth after a temporal
    Gaussian of ``smooth_sigma`` frames (`pose.lifting.smooth_sequence`). ``noise``: Gaussian 2D noise added to
    the query, in units of the pose's 2D RMS size (OpenPose-like jitter). Returns
    ``{name: {"raw"|"smoothed": {"all": mm, "casia_views": mm, "random": mm, "per_view": {deg: mm}}}}``.
    ``timings``, when given, receives seconds spent per lifter; ``on_walk()`` is called after each walk (progress).
    """
    import time

    rng = np.random.default_rng(seed)
    names = ["zero-depth", "oracle", *lifters]
    rows = {name: {"raw": [], "smoothed": []} for name in names}
    for uv, cam in zip(proj.uv, proj.cam):
        _, _, scale = L.normalise_2d(uv)
        q = uv + noise * scale[:, None, None] * rng.standard_normal(uv.shape) if noise > 0 else uv
        z_root = L.root_of(cam)[:, 2]
        true_px = relative_depth_px(cam[..., 2], z_root[:, None], proj.focal)
        depths = {"zero-depth": (q, np.zeros(q.shape[:2])), "oracle": (uv, true_px)}
        for name, lifter in lifters.items():
            t0 = time.perf_counter()
            out = lifter.lift(q)
            if timings is not None:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
            depths[name] = (out[..., :2], out[..., 2])
        for name, (xy, d) in depths.items():
            rows[name]["raw"].append(mpjpe_mm(metric_from_depth(xy, d, z_root, proj.focal), cam))
            ds = L.smooth_sequence(d, smooth_sigma)
            rows[name]["smoothed"].append(mpjpe_mm(metric_from_depth(xy, ds, z_root, proj.focal), cam))
        if on_walk is not None:
            on_walk()
    casia = np.isfinite(proj.view)
    result = {}
    for name in names:
        result[name] = {}
        for mode, per_seq in rows[name].items():
            means = np.array([m.mean() for m in per_seq])
            frames = np.array([len(m) for m in per_seq])

            def wmean(sel, means=means, frames=frames):
                return float((means[sel] * frames[sel]).sum() / max(frames[sel].sum(), 1))

            result[name][mode] = {
                "all": wmean(np.ones(len(means), bool)),
                "casia_views": wmean(casia),
                "random": wmean(~casia),
                "per_view": {int(v): wmean(proj.view == v) for v in np.unique(proj.view[casia])},
            }
    return result


def heldout_sequences(root, held_out=HELD_OUT) -> list[PoseSequence]:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: UCalgary folder not found (held-out real walks for MPJPE)")
    seqs = drop_mirrored(ucalgary_sequences(root, subjects=tuple(held_out)), log=lambda *a: None)
    if not seqs:
        raise DatasetError(f"{root}: none of the held-out subjects {list(held_out)} found")
    return seqs


def library_held_out(path) -> list[int] | None:
    """The UCalgary subjects a library file left out (None when the file does not say)."""
    with np.load(path, allow_pickle=False) as z:
        return [int(v) for v in z["held_out"]] if "held_out" in z else None


# ---------------------------------------------------------------------------------------------------------
# Lifters as the commands use them
# ---------------------------------------------------------------------------------------------------------
def make_lifter(kind: str, library=None, model=None, k: int = 1, device: str = "auto"):
    """The lifter a command asked for, with a clear error when its file is missing."""
    if kind == "matching":
        library = Path(library or DEFAULT_LIBRARY)
        if not library.is_file():
            raise DatasetError(f"{library}: no lifting library (run `cagereid lift build-library --out {library}`)")
        return L.MatchingLifter.load(library, k=k, device=device)
    if kind == "mlp":
        path = Path(model) if model else default_mlp_path()
        if path is None or not path.is_file():
            raise DatasetError(f"{model or DEFAULT_MLP}: no MLP lifter (run `cagereid lift train`)")
        return L.MLPLifter.load(path, device=device)
    raise DatasetError(f"unknown lifter {kind!r} (matching|mlp)")


def default_mlp_path() -> Path | None:
    """The MLP lifter `cagereid lift train` wrote by default, if there is one (no lifter ships with the package)."""
    return DEFAULT_MLP if DEFAULT_MLP.is_file() else None


def default_smooth(kind: str, smooth: float | None) -> float:
    return (2.0 if kind == "mlp" else 0.0) if smooth is None else float(smooth)


def lift_openpose_dir(folder, lifter, smooth: float, min_conf: float = 0.05, min_frames: int = 10,
                      all_people: bool = False) -> list[dict]:
    """Read an OpenPose JSON folder and lift its main person (or everyone) to casia14 3D.

    Returns one dict per lifted person: ``joints (T, 14, 3)`` (x, y pixels, z depth in pixel units relative
    to the pelvis), ``frames (T,)``, ``valid2d (T, 14)`` (detected, not filled), ``format``.
    """
    from pose.openpose import SourceError, read_openpose_dir

    seq = read_openpose_dir(folder)
    tracks = seq.tracks if all_people else [seq.main_track()]
    out = []
    for t in tracks:
        xy, valid = t.casia14(min_conf)
        if int(valid.any(1).sum()) < min_frames:
            continue
        try:
            joints = lifter.lift_sequence(xy, valid, smooth_sigma=smooth)
        except L.LiftError as exc:
            if all_people:
                continue
            raise SourceError(f"{folder}: {exc}") from None
        out.append({"joints": joints, "frames": t.frames, "valid2d": valid, "format": t.format})
    if not out:
        raise SourceError(f"{folder}: no person seen in at least {min_frames} frames ({seq.n_frames} JSON files)")
    return out
