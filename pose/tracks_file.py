"""The ``.npz`` tracks file of ``cagereid extract``: `TrackSequence` (one person's skeleton stream),
`ExtractResult` (a whole run), `save_tracks` (pickle-free, atomic) and `load_tracks`."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pose.pipeline import AXES, MEDIAPIPE, MIN_VISIBILITY, convert_world
from pose.sources import SourceError

FORMAT = "cagereid-tracks"
FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------------------
# Offline extraction: whole tracks
# ---------------------------------------------------------------------------------------------------------
@dataclass
class TrackSequence:
    """One person's skeleton stream. Frames run from the first to the last frame the person was found,
    without holes; ``found`` marks frames with a measured pose, ``filled`` frames interpolated over a short
    gap; all other frames are NaN."""

    track_id: int
    frames: np.ndarray       # (T,) int frame indices
    timestamps: np.ndarray   # (T,) seconds
    found: np.ndarray        # (T,) bool
    filled: np.ndarray       # (T,) bool
    mediapipe33: np.ndarray  # (T, 33, 3) world landmarks, MediaPipe axes
    keypoints2d: np.ndarray  # (T, 33, 2) pixels
    visibility: np.ndarray   # (T, 33)
    bbox: np.ndarray         # (T, 4) pixels
    root: np.ndarray | None = None  # (T, 3) estimated hip-midpoint position, Kinect camera axes, metres
    crowded: np.ndarray | None = None  # (T,) bool: dropped (not found) because another person overlapped this one
    joints: dict[str, np.ndarray] = field(default_factory=dict)  # layout -> (T, J, 3)
    valid: dict[str, np.ndarray] = field(default_factory=dict)   # layout -> (T, J) bool

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def n_found(self) -> int:
        return int(self.found.sum())

    def layout_joints(self, layout: str, min_visibility: float | None = MIN_VISIBILITY):
        """``(joints (T, J, 3), valid (T, J))`` in ``layout``, converted from the MediaPipe landmarks with
        ``min_visibility`` (None: as stored at extraction; also when the track has no landmarks)."""
        if min_visibility is None or not np.isfinite(self.mediapipe33).any():
            return self.joints[layout], self.valid[layout]
        vis = np.where(np.isfinite(self.visibility), self.visibility, 0.0)
        return convert_world(self.mediapipe33, vis, layout, min_visibility)

    def summary(self) -> dict:
        return {"track_id": self.track_id, "first_frame": int(self.frames[0]), "last_frame": int(self.frames[-1]),
                "n_frames": len(self), "n_found": self.n_found, "n_filled": int(self.filled.sum()),
                "n_crowded": int(self.crowded.sum()) if self.crowded is not None else 0}


@dataclass
class ExtractResult:
    source: str
    source_kind: str
    fps: float
    frame_size: tuple[int, int] | None
    n_frames: int                 # frames processed
    layouts: tuple[str, ...]
    tracks: list[TrackSequence]
    frames_with_pose: int = 0     # frames in which at least one kept track was found
    complete: bool = True         # False: the source broke (see error) or the run was interrupted
    error: str | None = None
    stats: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def track(self, track_id: int) -> TrackSequence:
        for t in self.tracks:
            if t.track_id == track_id:
                return t
        raise KeyError(f"no track {track_id} (tracks: {[t.track_id for t in self.tracks]})")

    def main_track(self) -> TrackSequence:
        if not self.tracks:
            raise SourceError(f"{self.source}: no person found in {self.n_frames} frames")
        return max(self.tracks, key=lambda t: (t.n_found, -t.track_id))

    def meta(self) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION, "source": self.source,
                "source_kind": self.source_kind, "fps": self.fps,
                "frame_size": list(self.frame_size) if self.frame_size else None, "n_frames": self.n_frames,
                "frames_with_pose": self.frames_with_pose, "layouts": list(self.layouts), "axes": AXES,
                "complete": self.complete, "error": self.error,
                "tracks": [t.summary() for t in self.tracks], "stats": self.stats, "params": self.params}


# ---------------------------------------------------------------------------------------------------------
# .npz format
# ---------------------------------------------------------------------------------------------------------
_PER_TRACK = ("frames", "timestamps", "found", "filled", "mediapipe33", "keypoints2d", "visibility", "bbox")


def save_tracks(path, result: ExtractResult) -> Path:
    """Write ``result`` as a pickle-free ``.npz`` (atomically).

    Keys: ``meta`` (a JSON string: format, version, source, fps, frame_size, layouts, axes, complete/error,
    per-track summaries, stats, params) and per track ``track{id}/frames``, ``/timestamps``, ``/found``,
    ``/filled``, ``/mediapipe33``, ``/keypoints2d``, ``/visibility``, ``/bbox``, ``/root`` (T, 3), ``/crowded`` (T,)
    (frames dropped because another person overlapped this one; absent in older files: all False), ``/{layout}``
    (T, J, 3) and ``/{layout}_valid`` (T, J).
    """
    from pose.io import save_npz

    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(result.meta(), default=_json_default))}
    for t in result.tracks:
        p = f"track{t.track_id}/"
        for key in _PER_TRACK:
            arrays[p + key] = getattr(t, key)
        if t.root is not None:
            arrays[p + "root"] = t.root
        if t.crowded is not None:
            arrays[p + "crowded"] = np.asarray(t.crowded, bool)
        for name in t.joints:
            arrays[p + name] = t.joints[name]
            arrays[p + name + "_valid"] = t.valid[name]
    path = Path(path)
    save_npz(path, arrays)
    return path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def load_tracks(path) -> ExtractResult:
    """Read a file written by `extract` / `save_tracks` (no pickle). Raises `SourceError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such tracks file")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - a broken zip or a non-npz file
        raise SourceError(f"{path}: not a readable .npz tracks file ({exc})") from None
    if "meta" not in data:
        raise SourceError(f"{path}: no 'meta' entry; not written by cagereid extract")
    try:
        meta = json.loads(str(data["meta"]))
    except ValueError:
        raise SourceError(f"{path}: 'meta' is not valid JSON") from None
    if meta.get("format") != FORMAT:
        raise SourceError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        raise SourceError(f"{path}: format version {meta.get('version')} is newer than this reader "
                          f"({FORMAT_VERSION})")
    layouts = tuple(meta.get("layouts", ()))
    tracks = []
    for summary in meta.get("tracks", []):
        tid = int(summary["track_id"])
        p = f"track{tid}/"
        missing = [p + k for k in _PER_TRACK if p + k not in data]
        if missing:
            raise SourceError(f"{path}: track {tid} lacks {', '.join(missing)}")
        crowded = data.get(p + "crowded")
        seq = TrackSequence(tid, *(data[p + k] for k in _PER_TRACK), root=data.get(p + "root"),
                            crowded=crowded.astype(bool) if crowded is not None else np.zeros(len(data[p + "frames"]), bool))
        for name in layouts:
            if name == MEDIAPIPE:
                continue
            if p + name not in data:
                raise SourceError(f"{path}: track {tid} lacks layout {name}")
            seq.joints[name] = data[p + name]
            seq.valid[name] = data[p + name + "_valid"].astype(bool)
        tracks.append(seq)
    size = meta.get("frame_size")
    return ExtractResult(meta.get("source", ""), meta.get("source_kind", ""), float(meta.get("fps") or 0.0),
                         tuple(size) if size else None, int(meta.get("n_frames", 0)), layouts, tracks,
                         int(meta.get("frames_with_pose", 0)), bool(meta.get("complete", True)),
                         meta.get("error"), meta.get("stats", {}), meta.get("params", {}))
