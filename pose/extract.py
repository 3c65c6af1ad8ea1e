"""Frames -> per-person 3D skeleton streams: detection, tracking, MediaPipe pose per person, smoothing.

Two entry points share one pipeline (`PosePipeline`):

* `iter_tracks(source, multi_person='auto', layout='kinect_v1')` — a generator for live use. Per processed
  frame it yields a `FrameTracks` (a ``list`` of `TrackObservation`, with the `Frame` as ``.frame``) holding one
  observation per confirmed track whose pose was found in that frame. A frame where a person is not found has
  no observation for them (their ``frame_index`` sequence shows the gap); nothing is invented.
* `extract(source, out_npz=..., overlay=..., openpose_dir=...)` — the offline job behind ``cagereid extract``:
  whole tracks with per-frame ``found``/``filled`` flags, short gaps interpolated (flagged), written to a
  pickle-free ``.npz`` that `load_tracks` reads back.

Pipeline modes (``multi_person``):

* ``False`` — single person, fast path: MediaPipe on the full frame, no detector. One track.
* ``True`` — HOG people detector every ``detect_every`` frames, IoU + Hungarian tracking (`pose.track`), each
  tracked person cropped with a margin (upscaled to ``min_crop_height`` when small) and posed by their own
  MediaPipe graph; between detections the pose keeps the track's box up to date.
* ``'auto'`` (default) — start single; switch to multi (for good) when the full-frame pose fails for
  ``auto_fail_frames`` frames in a row, or when the detector (run every ``auto_check_every`` frames) sees a
  confident person at least ``auto_other_ratio`` times as tall as the tracked one who is not them.

Coordinates: ``mediapipe33`` world landmarks are MediaPipe's (metres, origin at the hip midpoint, x image-right,
y down, z away from the camera). The converted layouts (``kinect_v1``, ``casia14``, ...) are in Kinect camera axes
*x image-left, y up, z away* (right-handed; metres, still hip-centred: MediaPipe gives no absolute position),
the convention of real Kinect recordings and of our synthetic walker (`pose.synthetic`). ``root`` (per frame, same
axes) estimates where that hip midpoint is in camera space, from the 2D↔3D landmark correspondences and a
pinhole camera with an assumed focal length (``focal_px``, default the larger image side): add it to the joints
for camera-space skeletons; its depth scales with the focal length. Joints a layout has but MediaPipe does not are derived by `pose.convert.convert`
(documented per joint there) or NaN with ``valid=False`` — a joint whose source landmarks have visibility below
``min_visibility`` (default `MIN_VISIBILITY` = 0: MediaPipe's estimate of every landmark) is invalid, never zero.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from pose.estimator import PoseEstimator, PoseResult, estimate_translation, to_camera_axes
from pose.smoothing import OneEuroFilter, fill_gaps
from pose.sources import Frame, FrameSource, SourceError, open_source
from pose.track import Track, Tracker, pose_box
from pose.errors import PoseError

FORMAT = "cagereid-tracks"
FORMAT_VERSION = 1
MEDIAPIPE = "mediapipe33"
#: Landmarks below this MediaPipe visibility make the layout joints built from them missing. 0: MediaPipe's own
#: estimate of every landmark is used, also where it says the landmark is hidden (the far arm in a side view):
#: on the real ucb_recognition side-view clips this re-identified better than dropping them at 0.5 and filling
#: (README, "Side views and missing joints"). Joints still missing are filled by `cages.windows.MissingJoints`.
MIN_VISIBILITY = 0.0
AXES = {
    MEDIAPIPE: "MediaPipe world: metres, origin hip midpoint, x image-right, y down, z away from camera",
    "layouts": "Kinect camera axes: metres, origin hip midpoint, x image-left, y up, z away from camera",
    "root": "estimated hip-midpoint position in Kinect camera axes (metres; pinhole, assumed focal length)",
}
# MediaPipe torso landmarks: shoulders and hips must be seen for a crop's pose to count as a person.
_TORSO = (11, 12, 23, 24)


class ExtractError(PoseError):
    """A bad extraction request (unknown layout, unreadable tracks file, ...): one line."""


def _layout_name(name: str) -> str:
    from pose.layouts import get_layout

    try:
        return get_layout(name).name
    except ValueError as exc:  # LayoutError: one line, lists the valid names
        raise ExtractError(str(exc)) from None


def to_layout_axes(world: np.ndarray) -> np.ndarray:
    """MediaPipe world axes -> Kinect camera axes of our layouts (x image-left, y up, z away). ``(..., 3)``.

    A 180° rotation about z, so left and right joints keep their meaning (a person facing the camera has
    their left side at -x, as in real Kinect recordings and in `pose.synthetic`)."""
    return to_camera_axes(world)


def convert_world(world: np.ndarray, visibility: np.ndarray, layout: str,
                  min_visibility: float = MIN_VISIBILITY):
    """``world (..., 33, 3)`` MediaPipe axes -> ``(joints (..., J, 3), valid (..., J))`` in ``layout``."""
    from pose.convert import convert

    if layout == MEDIAPIPE:
        out = np.array(world, dtype=np.float64, copy=True)
        valid = np.isfinite(out).all(-1) & (np.asarray(visibility) >= min_visibility)
        out[~valid] = np.nan
        return out, valid
    return convert(to_layout_axes(world), MEDIAPIPE, layout, visibility=visibility, min_visibility=min_visibility)


# ---------------------------------------------------------------------------------------------------------
# Per-frame observations
# ---------------------------------------------------------------------------------------------------------
@dataclass
class TrackObservation:
    track_id: int
    frame_index: int
    timestamp_s: float
    joints: np.ndarray       # (J, 3) metres in ``layout`` (NaN where not valid)
    valid: np.ndarray        # (J,) bool
    keypoints2d: np.ndarray  # (33, 2) pixels, MediaPipe order
    visibility: np.ndarray   # (33,) in [0, 1]
    bbox: np.ndarray         # (4,) x0, y0, x1, y1 pixels
    layout: str = "kinect_v1"
    world33: np.ndarray | None = None  # (33, 3) smoothed MediaPipe world landmarks
    found: bool = True
    confirmed: bool = True
    root: np.ndarray | None = None     # (3,) estimated hip-midpoint position, Kinect camera axes, metres


class FrameTracks(list):
    """The observations of one processed frame (a plain list) plus the frame itself as ``.frame``."""

    def __init__(self, observations, frame: Frame):
        super().__init__(observations)
        self.frame = frame


@dataclass
class _TrackState:
    estimator: PoseEstimator | None
    world_filter: OneEuroFilter
    kp_filter: OneEuroFilter
    root_filter: OneEuroFilter


class PosePipeline:
    """Stateful frame processor; `step(frame)` returns one `TrackObservation` per live track (found or not).

    Parameters (all keyword): ``multi_person`` (True | False | 'auto'), ``layout`` (layout of
    `TrackObservation.joints`), ``detect_every`` (frames between detector runs in multi mode),
    ``detector_height`` (frames are resized to this height for the HOG detector), ``min_crop_height`` (person
    crops are upscaled to at least this height), ``crop_margin`` (fraction of the box added on each side),
    ``max_people`` (at most this many people posed per frame, the most confident tracks first),
    ``min_pose_score`` (mean torso visibility for a crop's pose to count), ``drop_unposed`` (a tentative track
    whose crop gives no pose this many frames in a row is dropped), ``focal_px`` (for the root estimate), ``smooth`` (One-Euro on world
    landmarks and 2D keypoints), ``min_visibility`` (for layout conversion), ``model_complexity`` (MediaPipe;
    only 1 is bundled), tracker settings via ``tracker_kw``.
    """

    def __init__(self, *, multi_person: bool | str = "auto", layout: str = "kinect_v1", detect_every: int = 5,
                 detector_height: int | None = 864, min_crop_height: int = 256, crop_margin: float = 0.2,
                 max_people: int = 12, min_pose_score: float = 0.5, smooth: bool = True,
                 min_visibility: float = MIN_VISIBILITY, model_complexity: int = 1, auto_fail_frames: int = 5,
                 auto_check_every: int = 25, auto_other_ratio: float = 0.85, quiet: bool = True,
                 focal_px: float | None = None, drop_unposed: int = 3, tracker_kw: dict | None = None,
                 smoothing_kw: dict | None = None):
        if multi_person not in (True, False, "auto"):
            raise ExtractError(f"multi_person must be True, False or 'auto', got {multi_person!r}")
        self.layout = _layout_name(layout)
        self.multi_person = multi_person
        self.mode = "multi" if multi_person is True else "single"
        self.switched_at: int | None = None
        self.detect_every = max(1, int(detect_every))
        self.detector_height = detector_height
        self.min_crop_height = int(min_crop_height)
        self.crop_margin = float(crop_margin)
        self.max_people = int(max_people)
        self.min_pose_score = float(min_pose_score)
        self.smooth = bool(smooth)
        self.min_visibility = float(min_visibility)
        self.model_complexity = int(model_complexity)
        self.auto_fail_frames = int(auto_fail_frames)
        self.auto_check_every = int(auto_check_every)
        self.auto_other_ratio = float(auto_other_ratio)
        self.quiet = quiet
        self.focal_px = focal_px
        self.drop_unposed = int(drop_unposed)
        self.smoothing_kw = dict(smoothing_kw or {})
        tkw = {"max_lost": 15, "min_hits": 3}
        tkw.update(tracker_kw or {})
        self.tracker = Tracker(**tkw)
        self._detector = None
        self._full: PoseEstimator | None = None  # full-frame estimator (single mode)
        self._verify: PoseEstimator | None = None  # auto mode: checks a possible second person
        self._states: dict[int, _TrackState] = {}
        self._fails = 0
        self._last_detect = -10 ** 9
        self.stats = {"frames": 0, "pose_calls": 0, "person_frames": 0, "detector_runs": 0,
                      "detector_s": 0.0, "pose_s": 0.0}
        # fail early (before any frame) on an unusable model
        from pose.estimator import check_model

        check_model(self.model_complexity)

    # ------------------------------------------------------------------ helpers
    def _new_estimator(self, crop: bool) -> PoseEstimator:
        return PoseEstimator(self.model_complexity, min_crop_height=self.min_crop_height if crop else 0,
                             quiet=self.quiet)

    def _state(self, track: Track, crop: bool = True) -> _TrackState:
        st = self._states.get(track.track_id)
        if st is None:
            kw = self.smoothing_kw
            st = _TrackState(
                None,
                OneEuroFilter(kw.get("min_cutoff", 2.0), kw.get("beta", 1.0)),
                OneEuroFilter(kw.get("min_cutoff_px", 2.0), kw.get("beta_px", 0.02)),
                OneEuroFilter(kw.get("min_cutoff_root", 1.0), kw.get("beta_root", 0.5)))
            self._states[track.track_id] = st
        if st.estimator is None and crop:
            st.estimator = self._new_estimator(crop=True)
        return st

    def _drop(self, tracks) -> None:
        for t in tracks:
            st = self._states.pop(t.track_id, None)
            if st is not None and st.estimator is not None:
                st.estimator.close()

    def _detect(self, image, target_height: int | None = None):
        if self._detector is None:
            from pose.detect import PeopleDetector

            self._detector = PeopleDetector(target_height=self.detector_height)
        t0 = time.perf_counter()
        dets = self._detector.detect(image, target_height)
        self.stats["detector_s"] += time.perf_counter() - t0
        self.stats["detector_runs"] += 1
        return dets

    def _pose(self, est: PoseEstimator, image, roi=None) -> PoseResult | None:
        t0 = time.perf_counter()
        res = est.process(image, roi=roi)
        self.stats["pose_s"] += time.perf_counter() - t0
        self.stats["pose_calls"] += 1
        if res is not None and roi is not None and float(np.mean(res.visibility[list(_TORSO)])) < self.min_pose_score:
            return None  # a crop of clutter can yield a ghost skeleton with an unseen torso
        return res

    def _roi(self, box, size):
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        m = self.crop_margin
        # square-ish crops suit the landmark model (256x256 input): widen narrow boxes
        side_w = max(w * (1 + 2 * m), 0.75 * h * (1 + 2 * m))
        cx = 0.5 * (x0 + x1)
        return (cx - side_w / 2, y0 - m * h, cx + side_w / 2, y1 + m * h)

    # ------------------------------------------------------------------ per frame
    def step(self, frame: Frame) -> list[TrackObservation]:
        self.stats["frames"] += 1
        image = frame.image_bgr
        size = (image.shape[1], image.shape[0])
        results: dict[int, PoseResult | None] = {}
        if self.mode == "single":
            results = self._step_single(frame, size)
        if self.mode == "multi":
            results = self._step_multi(frame, size)
        return self._observations(frame, results)

    def _step_single(self, frame: Frame, size) -> dict:
        image = frame.image_bgr
        self.tracker.predict(frame.index, size)
        self._drop(self.tracker.removed)
        if self._full is None:
            self._full = self._new_estimator(crop=False)
        res = self._pose(self._full, image)
        track = self.tracker.tracks[0] if self.tracker.tracks else None
        if res is not None:
            self._fails = 0
            box = pose_box(res.keypoints2d, res.visibility)
            if track is None and box is not None:
                track = self.tracker.new_track(box, 1.0)
                track.confirmed = True
            elif track is not None:
                self.tracker.observe_pose(track, res.keypoints2d, res.visibility)
        else:
            self._fails += 1
        if self.multi_person == "auto":
            switch = self._fails >= self.auto_fail_frames
            if not switch and track is not None and frame.index % self.auto_check_every == 0:
                from pose.detect import iou_matrix

                # only people about as tall as the tracked one matter here: detect on a frame shrunk so that
                # such a person is ~1.5 detector windows tall (far cheaper than the full-size search)
                h_img = image.shape[0]
                target = int(min(self.detector_height or h_img, h_img * 200.0 / max(1.4 * track.height, 1.0)))
                dets = self._detect(image, max(target, 160))
                if dets:
                    boxes = np.array([d.box for d in dets])
                    overlap = iou_matrix(boxes, track.box[None])[:, 0]
                    me = int(np.argmax(overlap))
                    # compare detector boxes with detector boxes (HOG windows have a margin a pose box has not)
                    ref_h = boxes[me, 3] - boxes[me, 1] if overlap[me] > 0.3 else 1.4 * track.height
                    for k, d in enumerate(dets):
                        if k == me and overlap[me] > 0.3:
                            continue
                        other = overlap[k] < 0.2
                        tall = (d.box[3] - d.box[1]) >= self.auto_other_ratio * ref_h
                        if other and tall and d.score >= self.tracker.new_track_score \
                                and self._is_other_person(image, d.box, track, size):
                            switch = True
                            break
            if switch:
                self.mode = "multi"
                self.switched_at = frame.index
                for est in (self._full, self._verify):
                    if est is not None:
                        est.close()
                self._full = self._verify = None
                self._last_detect = -10 ** 9
                return {}  # this frame is redone in multi mode by step()
        if track is None:
            return {}
        self._state(track, crop=False)
        return {track.track_id: res}

    def _is_other_person(self, image, box, track: Track, size) -> bool:
        """Auto mode: confirm a detector box by posing it (HOG alone fires on clutter and crowds): a second
        person counts when their pose box is at least ``auto_other_ratio`` of the tracked one's, elsewhere."""
        from pose.detect import iou_matrix

        if self._verify is None:
            self._verify = PoseEstimator(self.model_complexity, static_image_mode=True,
                                         min_crop_height=self.min_crop_height, quiet=self.quiet)
        res = self._pose(self._verify, image, roi=self._roi(box, size))
        if res is None:
            return False
        pb = pose_box(res.keypoints2d, res.visibility)
        if pb is None:
            return False
        return bool((pb[3] - pb[1]) >= self.auto_other_ratio * track.height
                    and iou_matrix(pb[None], track.box[None])[0, 0] < 0.2)

    def _step_multi(self, frame: Frame, size) -> dict:
        image = frame.image_bgr
        if self.tracker.frame != frame.index:
            self.tracker.predict(frame.index, size)
            self._drop(self.tracker.removed)
        if frame.index - self._last_detect >= self.detect_every:
            self._last_detect = frame.index
            self.tracker.update(self._detect(image))
            self._drop(self.tracker.removed)
        tracks = sorted(self.tracker.tracks, key=lambda t: (not t.confirmed, -t.score, t.track_id))
        results = {}
        for t in tracks[: self.max_people]:
            st = self._state(t, crop=True)
            res = self._pose(st.estimator, image, roi=self._roi(t.box, size))
            if res is not None:
                t.pose_misses = 0
                self.tracker.observe_pose(t, res.keypoints2d, res.visibility)
            else:
                t.pose_misses += 1
                if not t.confirmed and t.pose_misses >= self.drop_unposed:
                    # a detector false positive (a bin, a pole): stop spending pose calls on it
                    self.tracker.remove(t, suppress_frames=30)
                    continue
            results[t.track_id] = res
        self.tracker.merge_duplicates()
        self._drop(self.tracker.removed)
        live = {t.track_id for t in self.tracker.tracks}
        return {k: v for k, v in results.items() if k in live}

    def _observations(self, frame: Frame, results: dict) -> list[TrackObservation]:
        by_id = {t.track_id: t for t in self.tracker.tracks}
        out = []
        for tid in sorted(results):
            res, track = results[tid], by_id.get(tid)
            if track is None:
                continue
            st = self._states[tid]
            if res is None:
                out.append(TrackObservation(
                    tid, frame.index, frame.timestamp_s, np.full((self._J, 3), np.nan),
                    np.zeros(self._J, bool), np.full((33, 2), np.nan), np.zeros(33), track.box.copy(),
                    self.layout, np.full((33, 3), np.nan), found=False, confirmed=track.confirmed))
                continue
            self.stats["person_frames"] += 1
            world, kp = res.world, res.keypoints2d
            root = estimate_translation(world, kp, res.visibility, (frame.image_bgr.shape[1],
                                                                      frame.image_bgr.shape[0]), self.focal_px)
            if self.smooth:
                world = st.world_filter(world, frame.timestamp_s)
                kp = st.kp_filter(kp, frame.timestamp_s)
                root = st.root_filter(root, frame.timestamp_s)
            joints, valid = convert_world(world, res.visibility, self.layout, self.min_visibility)
            out.append(TrackObservation(tid, frame.index, frame.timestamp_s, joints, valid, kp,
                                        res.visibility.copy(), track.box.copy(), self.layout, world,
                                        found=True, confirmed=track.confirmed, root=to_camera_axes(root)))
        return out

    @property
    def _J(self) -> int:
        from pose.layouts import get_layout

        return get_layout(self.layout).J

    def close(self) -> None:
        for est in (self._full, self._verify):
            if est is not None:
                est.close()
        self._full = self._verify = None
        self._drop(list(self.tracker.tracks))
        for st in self._states.values():
            if st.estimator is not None:
                st.estimator.close()
        self._states.clear()

    def __enter__(self) -> "PosePipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _as_source(source, max_frames: int | None = None) -> FrameSource:
    if isinstance(source, FrameSource):
        if max_frames is not None:
            source.max_frames = max_frames if source.max_frames is None else min(source.max_frames, max_frames)
        return source
    return open_source(source, max_frames=max_frames)


def iter_tracks(source, *, multi_person: bool | str = "auto", layout: str = "kinect_v1",
                include_unconfirmed: bool = False, max_frames: int | None = None,
                **pipeline_kw) -> Iterator[FrameTracks]:
    """Yield, per frame of ``source`` (a spec for `open_source` or a `FrameSource`), the `TrackObservation`s of
    the tracks whose pose was found in it (confirmed tracks only unless ``include_unconfirmed``).

    A `SourceError` from the source (corrupt video half-way) is raised after the last good frame's
    observations were yielded. Other keyword arguments go to `PosePipeline`.
    """
    src = _as_source(source, max_frames)
    with src, PosePipeline(multi_person=multi_person, layout=layout, **pipeline_kw) as pipe:
        for frame in src:
            obs = pipe.step(frame)
            yield FrameTracks([o for o in obs if o.found and (o.confirmed or include_unconfirmed)], frame)


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
                "n_frames": len(self), "n_found": self.n_found, "n_filled": int(self.filled.sum())}


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


def _build_track(tid: int, obs: list[TrackObservation], layouts, max_gap: int, min_visibility: float):
    first, last = obs[0].frame_index, obs[-1].frame_index
    T = last - first + 1
    frames = np.arange(first, last + 1)
    ts = np.full(T, np.nan)
    found = np.zeros(T, bool)
    world = np.full((T, 33, 3), np.nan)
    kp = np.full((T, 33, 2), np.nan)
    vis = np.full((T, 33), np.nan)
    bbox = np.full((T, 4), np.nan)
    root = np.full((T, 3), np.nan)
    for o in obs:
        i = o.frame_index - first
        ts[i] = o.timestamp_s
        bbox[i] = o.bbox
        if o.found:
            found[i] = True
            world[i], kp[i], vis[i] = o.world33, o.keypoints2d, o.visibility
            if o.root is not None:
                root[i] = o.root
    # frames of the range without any observation (e.g. a track not posed that frame): time by interpolation
    known = np.isfinite(ts)
    if not known.all():
        ts = np.interp(frames, frames[known], ts[known])
    world, filled = fill_gaps(world, found, ts, max_gap)
    kp, _ = fill_gaps(kp, found, ts, max_gap)
    vis, _ = fill_gaps(vis, found, ts, max_gap)
    root, _ = fill_gaps(root, found, ts, max_gap)
    seq = TrackSequence(tid, frames, ts, found, filled, world, kp, vis, bbox, root)
    vis0 = np.where(np.isfinite(vis), vis, 0.0)
    for name in layouts:
        if name == MEDIAPIPE:
            continue
        seq.joints[name], seq.valid[name] = convert_world(world, vis0, name, min_visibility)
    return seq


def extract(source, out_npz=None, overlay=None, openpose_dir=None, layouts=("kinect_v1", "casia14"),
            progress: bool = True, *, multi_person: bool | str = "auto", max_frames: int | None = None,
            min_track_frames: int = 5, max_gap: int = 5, **pipeline_kw) -> ExtractResult:
    """Run the pipeline over a whole source and collect per-track skeleton sequences.

    ``out_npz``: write the result there (atomically; see `save_tracks`). ``overlay``: an ``.mp4`` / ``.avi``
    with skeletons and track ids drawn. ``openpose_dir``: one OpenPose-style ``<stem>_<frame:012d>_keypoints.json``
    per frame (BODY_25 2D keypoints of the confirmed people). ``layouts``: 3D layouts to store besides the raw
    ``mediapipe33``. Tracks found in fewer than ``min_track_frames`` frames are dropped; gaps of at most
    ``max_gap`` frames are interpolated and flagged ``filled``.

    If the source breaks half-way (or on Ctrl-C), everything extracted so far is still written, and the
    `SourceError` (or KeyboardInterrupt) is raised afterwards with a note of what was kept.
    """
    layouts = tuple(_layout_name(n) for n in layouts)
    src = _as_source(source, max_frames)
    primary = layouts[0] if layouts else "kinect_v1"
    per_track: dict[int, list[TrackObservation]] = {}
    writer = None
    op_people = None
    error: BaseException | None = None
    n = 0
    t_start = time.perf_counter()
    params = {"multi_person": multi_person, "min_track_frames": min_track_frames, "max_gap": max_gap,
              **{k: v for k, v in pipeline_kw.items() if isinstance(v, (int, float, str, bool, type(None)))}}
    pipe = PosePipeline(multi_person=multi_person, layout=primary, **pipeline_kw)
    bar = _Progress(progress, src)
    try:
        if overlay is not None:
            from pose.overlay import OverlayWriter

            writer = OverlayWriter(overlay, fps=src.fps or 25.0)
        if openpose_dir is not None:
            op_people = _OpenPoseDir(openpose_dir, src.name)
        with bar:
            for frame in src:
                obs = pipe.step(frame)
                n += 1
                for o in obs:
                    per_track.setdefault(o.track_id, []).append(o)
                shown = [o for o in obs if o.found and o.confirmed]
                if writer is not None:
                    writer.write(frame.image_bgr, shown, frame.index, mode=pipe.mode)
                if op_people is not None:
                    op_people.write(frame.index, shown)
                bar.advance(len(shown))
    except (SourceError, KeyboardInterrupt) as exc:
        if isinstance(exc, SourceError) and n == 0 and not per_track:
            pipe.close()
            if writer is not None:
                writer.abort()
            raise
        error = exc
    finally:
        pipe.close()
    wall = time.perf_counter() - t_start
    tracks = []
    for tid, obs in sorted(per_track.items()):
        found = [o for o in obs if o.found]
        if len(found) < min_track_frames:
            continue
        # trim to first..last found frame
        obs = [o for o in obs if found[0].frame_index <= o.frame_index <= found[-1].frame_index]
        tracks.append(_build_track(tid, obs, layouts, max_gap, pipe.min_visibility))
    frames_with_pose = len({int(f) for t in tracks for f in t.frames[t.found]})
    stats = dict(pipe.stats)
    stats.update({"wall_s": round(wall, 3), "fps": round(n / wall, 3) if wall > 0 else None,
                  "ms_per_person_frame": round(1000 * stats["pose_s"] / max(stats["pose_calls"], 1), 3),
                  "mode": pipe.mode, "switched_to_multi_at": pipe.switched_at,
                  "detector_s": round(stats["detector_s"], 3), "pose_s": round(stats["pose_s"], 3)})
    err_text = None
    if error is not None:
        err_text = str(error) if isinstance(error, SourceError) else "interrupted"
    result = ExtractResult(str(src.spec), src.kind, src.fps, src.size, n, layouts, tracks, frames_with_pose,
                           error is None, err_text, stats, params)
    if writer is not None:
        writer.close()
    if out_npz is not None:
        save_tracks(out_npz, result)
    if error is not None:
        if isinstance(error, SourceError):
            kept = f"; kept {n} frames, {len(tracks)} tracks" + (f" in {out_npz}" if out_npz else "")
            raise SourceError(f"{error}{kept}") from None
        raise KeyboardInterrupt(f"kept {n} frames, {len(tracks)} tracks" + (f" in {out_npz}" if out_npz else ""))
    return result


class _Progress:
    def __init__(self, enabled: bool, src: FrameSource):
        self.enabled = enabled
        self.total = src.expected_frames()
        self.name = src.name
        self._p = None
        self._task = None
        self.people = 0

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._p = Progress(TextColumn("[bold]extract[/] {task.description}"), BarColumn(),
                               MofNCompleteColumn(), TextColumn("{task.fields[people]} person-frames"),
                               TimeRemainingColumn(), transient=False)
            self._p.__enter__()
            self._task = self._p.add_task(self.name, total=self.total, people=0)
        return self

    def advance(self, people: int) -> None:
        self.people += people
        if self._p is not None:
            self._p.update(self._task, advance=1, people=self.people)

    def __exit__(self, *exc):
        if self._p is not None:
            self._p.__exit__(*exc)


class _OpenPoseDir:
    """Writes ``<stem>_<frame:012d>_keypoints.json`` per frame via `pose.openpose.write_frame_json`."""

    def __init__(self, folder, stem: str):
        from pose.openpose import write_frame_json

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stem = stem
        self._write = write_frame_json

    def write(self, frame_index: int, observations: list[TrackObservation]) -> None:
        from pose.convert import convert

        people = []
        for o in observations:
            kp, valid = convert(o.keypoints2d, MEDIAPIPE, "openpose_body25", visibility=o.visibility,
                                min_visibility=0.1)
            conf, _ = convert(o.visibility[:, None], MEDIAPIPE, "openpose_body25")
            conf = np.where(valid, conf[:, 0], 0.0)
            people.append((np.where(valid[:, None], kp, 0.0), conf))
        self._write(self.folder / f"{self.stem}_{frame_index:012d}_keypoints.json", people)


# ---------------------------------------------------------------------------------------------------------
# .npz format
# ---------------------------------------------------------------------------------------------------------
_PER_TRACK = ("frames", "timestamps", "found", "filled", "mediapipe33", "keypoints2d", "visibility", "bbox")


def save_tracks(path, result: ExtractResult) -> Path:
    """Write ``result`` as a pickle-free ``.npz`` (atomically).

    Keys: ``meta`` (a JSON string: format, version, source, fps, frame_size, layouts, axes, complete/error,
    per-track summaries, stats, params) and per track ``track{id}/frames``, ``/timestamps``, ``/found``,
    ``/filled``, ``/mediapipe33``, ``/keypoints2d``, ``/visibility``, ``/bbox``, ``/root`` (T, 3), ``/{layout}``
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
        seq = TrackSequence(tid, *(data[p + k] for k in _PER_TRACK), root=data.get(p + "root"))
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
