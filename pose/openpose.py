"""OpenPose JSON output: writer (one ``*_keypoints.json`` per frame) and reader.

OpenPose (CMU-Perceptual-Computing-Lab/openpose, ``doc/02_output.md``) writes, with ``--write_json DIR``,
one file per frame named ``<stem>_<frame:012d>_keypoints.json``::

    {"version": 1.3,
     "people": [{"person_id": [-1],
                 "pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...],   # 25 (BODY_25) or 18 (COCO) joints
                 "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
                 "pose_keypoints_3d": [], "face_keypoints_3d": [],
                 "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []}, ...]}

Coordinates are pixels; a joint OpenPose did not find is written as ``0, 0, 0``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pose.io import write_text
from pose.sources import SourceError  # one SourceError for every pose input

VERSION = 1.3

BODY25_JOINTS = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "mid_hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear", "l_big_toe", "l_small_toe", "l_heel",
    "r_big_toe", "r_small_toe", "r_heel",
)
COCO18_JOINTS = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear",
)

_EMPTY_FIELDS = ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d",
                 "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d")




def frame_json_name(stem: str, frame: int) -> str:
    """OpenPose's file name for frame ``frame`` of a source named ``stem``."""
    return f"{stem}_{int(frame):012d}_keypoints.json"


def person_dict(keypoints, confidence, person_id: int = -1) -> dict:
    """One OpenPose ``people`` entry from ``keypoints (J, 2)`` pixels and ``confidence (J,)``.

    Joints that are not finite or have confidence <= 0 are written as ``0, 0, 0`` (OpenPose's "missing").
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    if conf.shape[0] != kp.shape[0]:
        raise ValueError(f"keypoints have {kp.shape[0]} joints but confidence has {conf.shape[0]}")
    ok = np.isfinite(kp).all(axis=1) & np.isfinite(conf) & (conf > 0)
    flat = np.zeros((kp.shape[0], 3))
    flat[ok, :2] = kp[ok]
    flat[ok, 2] = np.clip(conf[ok], 0.0, 1.0)
    entry = {"person_id": [int(person_id)],
             "pose_keypoints_2d": [round(float(v), 3) for v in flat.reshape(-1)]}
    for name in _EMPTY_FIELDS:
        entry[name] = []
    return entry


def write_frame_json(path, people) -> Path:
    """Write one frame in OpenPose's JSON format, atomically.

    ``people``: list of ``(keypoints (25, 2) pixel coords, confidence (25,))`` in BODY_25 order (an 18-joint
    COCO list is written as is). An empty list writes a frame with no people, as OpenPose does.
    """
    path = Path(path)
    doc = {"version": VERSION, "people": [person_dict(kp, c) for kp, c in people]}
    write_text(path, json.dumps(doc, separators=(",", ":")))
    return path


# --------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------
FORMATS = {25: "body25", 18: "coco18"}
LAYOUT_NAMES = {"body25": "openpose_body25", "coco18": "openpose_coco18"}
_FRAME_RE = re.compile(r"_(\d+)_keypoints\.json$")

@dataclass
class OpenPoseTrack:
    """One person followed through an OpenPose JSON folder.

    ``frames (T,)`` frame numbers (consecutive from the first to the last frame the person was seen),
    ``keypoints (T, J, 2)`` pixels (NaN where not detected), ``confidence (T, J)`` (0 where not detected).
    """

    frames: np.ndarray
    keypoints: np.ndarray
    confidence: np.ndarray
    format: str  # "body25" | "coco18"

    @property
    def n_detected(self) -> int:
        return int((self.confidence > 0).any(axis=1).sum())

    def casia14(self, min_conf: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """``(T, 14, 2)`` pixels (NaN where missing or below ``min_conf``) and ``valid (T, 14)``."""
        return to_casia14(self.keypoints, self.confidence, self.format, min_conf)


@dataclass
class OpenPoseSequence:
    folder: Path
    format: str
    n_frames: int  # number of JSON files read
    frames: np.ndarray  # (n_frames,) frame numbers in file order
    tracks: list[OpenPoseTrack] = field(default_factory=list)

    def main_track(self) -> OpenPoseTrack:
        """The person detected in the most frames (ties: highest mean confidence)."""
        if not self.tracks:
            raise SourceError(f"{self.folder}: no person in any of its {self.n_frames} OpenPose JSON files")
        return max(self.tracks, key=lambda t: (t.n_detected, float(t.confidence.sum())))


def to_casia14(keypoints, confidence, fmt: str, min_conf: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Map OpenPose ``(..., J, 2)`` keypoints in ``fmt`` ("body25"/"coco18") to the 14-joint casia14 order.

    Uses `pose.convert.convert` (head = nose, OpenPose has no head top). Joints below ``min_conf`` are NaN
    with ``valid`` False.
    """
    from pose.convert import convert

    if fmt not in LAYOUT_NAMES:
        raise ValueError(f"unknown OpenPose format {fmt!r} (expected one of {sorted(LAYOUT_NAMES)})")
    conf = np.asarray(confidence, dtype=np.float64)
    return convert(np.asarray(keypoints, dtype=np.float64), LAYOUT_NAMES[fmt], "casia14", visibility=conf,
                   min_visibility=max(min_conf, 1e-9))


def frame_number(path: Path) -> int | None:
    m = _FRAME_RE.search(Path(path).name)
    return int(m.group(1)) if m else None


def read_frame_json(path) -> list[tuple[np.ndarray, np.ndarray]]:
    """People of one OpenPose JSON file: list of ``(keypoints (J, 2), confidence (J,))``.

    Joints written as ``0, 0, 0`` (not detected) come back as NaN keypoints with confidence 0.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: not a readable OpenPose JSON file ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("people"), list):
        raise SourceError(f"{path}: no 'people' list (not OpenPose --write_json output)")
    people = []
    for k, person in enumerate(doc["people"]):
        flat = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
        if not isinstance(flat, list) or len(flat) == 0:
            continue  # OpenPose writes an empty list when body estimation is disabled
        if len(flat) % 3 or len(flat) // 3 not in FORMATS:
            raise SourceError(f"{path}: person {k} has {len(flat)} pose values; expected 75 (BODY_25) or 54 (COCO-18)")
        try:
            arr = np.asarray(flat, dtype=np.float64).reshape(-1, 3)
        except (TypeError, ValueError):
            raise SourceError(f"{path}: person {k} has non-numeric pose_keypoints_2d") from None
        conf = np.where(np.isfinite(arr[:, 2]), arr[:, 2], 0.0)
        missing = conf <= 0
        kp = arr[:, :2].copy()
        kp[missing] = np.nan
        conf[missing] = 0.0
        people.append((kp, conf))
    return people


def list_frame_files(folder) -> list[Path]:
    """The ``*_keypoints.json`` files of a folder, in frame order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder of OpenPose JSON files")
    files = [p for p in folder.iterdir() if p.name.endswith("_keypoints.json")]
    if not files:
        raise SourceError(f"{folder}: no *_keypoints.json files (run OpenPose with --write_json {folder})")
    return sorted(files, key=lambda p: (frame_number(p) if frame_number(p) is not None else -1, p.name))


def _centre_and_size(kp: np.ndarray) -> tuple[np.ndarray, float]:
    ok = np.isfinite(kp).all(axis=1)
    pts = kp[ok]
    if len(pts) == 0:
        return np.full(2, np.nan), np.nan
    size = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]), 1.0))
    return pts.mean(axis=0), size


def read_openpose_dir(folder, max_gap: int = 10, max_jump: float = 1.0) -> OpenPoseSequence:
    """Read an OpenPose ``--write_json`` folder and follow every person through it.

    People are associated frame to frame by the Hungarian method on the distance of their keypoint
    centroids, divided by the person's size; a jump above ``max_jump`` sizes, or an absence of more than
    ``max_gap`` frames, starts a new track. Frames are ordered by the number in the file name.
    """
    from scipy.optimize import linear_sum_assignment

    files = list_frame_files(folder)
    per_frame = [read_frame_json(p) for p in files]
    numbers = [frame_number(p) for p in files]
    if any(n is None for n in numbers):
        numbers = list(range(len(files)))  # no frame numbers in the names: use the sorted order
    numbers = np.asarray(numbers, dtype=np.int64)
    J = next((len(kp) for people in per_frame for kp, _ in people), 25)
    for p, people in zip(files, per_frame):
        for kp, _ in people:
            if len(kp) != J:
                raise SourceError(f"{p}: {len(kp)}-joint people mixed with {J}-joint people in {Path(folder)}")
    fmt = FORMATS[J]

    # raw tracks: list of dict(frames=[...], kp=[...], conf=[...], centre, size, last)
    active: list[dict] = []
    finished: list[dict] = []
    for fno, people in zip(numbers.tolist(), per_frame):
        still = []
        for t in active:
            (still if fno - t["last"] <= max_gap else finished).append(t)
        active = still
        stats = [_centre_and_size(kp) for kp, _ in people]
        usable = [i for i, (c, _) in enumerate(stats) if np.isfinite(c).all()]
        assigned: set[int] = set()
        if active and usable:
            cost = np.full((len(active), len(usable)), 1e6)
            for a, t in enumerate(active):
                for b, i in enumerate(usable):
                    c, s = stats[i]
                    cost[a, b] = np.linalg.norm(c - t["centre"]) / max(t["size"], s)
            rows, cols = linear_sum_assignment(cost)
            for a, b in zip(rows, cols):
                gap = fno - active[a]["last"]
                if cost[a, b] <= max_jump * (1.0 + 0.25 * (gap - 1)):
                    i = usable[b]
                    t = active[a]
                    t["frames"].append(fno)
                    t["kp"].append(people[i][0])
                    t["conf"].append(people[i][1])
                    t["centre"], t["size"] = stats[i]
                    t["last"] = fno
                    assigned.add(i)
        for i in usable:
            if i not in assigned:
                c, s = stats[i]
                active.append(dict(frames=[fno], kp=[people[i][0]], conf=[people[i][1]], centre=c, size=s, last=fno))
    finished.extend(active)

    tracks = []
    for t in sorted(finished, key=lambda t: t["frames"][0]):
        first, last = t["frames"][0], t["frames"][-1]
        frames = np.arange(first, last + 1, dtype=np.int64)
        kp = np.full((len(frames), J, 2), np.nan)
        conf = np.zeros((len(frames), J))
        rows = np.asarray(t["frames"]) - first
        kp[rows] = np.stack(t["kp"])
        conf[rows] = np.stack(t["conf"])
        tracks.append(OpenPoseTrack(frames=frames, keypoints=kp, confidence=conf, format=fmt))
    return OpenPoseSequence(folder=Path(folder), format=fmt, n_frames=len(files), frames=numbers, tracks=tracks)
