"""Frames -> per-person 3D skeleton streams: detection, tracking, MediaPipe pose per person, smoothing.

Two entry points share one pipeline (`PosePipeline`, this module):

* `iter_tracks(source, multi_person='auto', layout='kinect_v1')` — a generator for live use. Per processed
  frame it yields a `FrameTracks` (a ``list`` of `TrackObservation`, with the `Frame` as ``.frame``) holding one
  observation per confirmed track whose pose was found in that frame. A frame where a person is not found has
  no observation for them (their ``frame_index`` sequence shows the gap); nothing is invented.
* `pose.extract.extract(source, out_npz=..., overlay=..., openpose_dir=...)` — the offline job behind
  ``cagereid extract``: whole tracks with per-frame ``found``/``filled`` flags, short gaps interpolated (flagged),
  written to a pickle-free ``.npz`` (`pose.tracks_file`) that `load_tracks` reads back.

Pipeline modes (``multi_person``):

* ``False`` — single person, fast path: MediaPipe on the full frame, no detector. One track.
* ``True`` — HOG people detector every ``detect_every`` frames, IoU + Hungarian tracking (`pose.track`), each
  tracked person cropped with a margin (upscaled to ``min_crop_height`` when small) and posed by their own
  MediaPipe graph; between detections the pose keeps the track's box up to date.
* ``'auto'`` (default) — start single; switch to multi (for good) when the full-frame pose fails for
  ``auto_fail_frames`` frames in a row, or when the detector (run every ``auto_check_every`` frames, in a thread
  beside the pose) sees a confident person at least ``auto_other_ratio`` times as tall as the tracked one who is
  not them (confirmed by a pose in their crop; the whole frame is searched every ``auto_verify_every`` frames,
  the other checks search around the tracked person only). A person who *overlaps* the tracked one (walks past in front or behind) does not get a track of their own: the
  full-frame pose may then put the tracked skeleton's limbs on them, so while the detector sees a second
  person box on the tracked one (`overlapping_people`), the detector runs every ``crowd_check_every`` frames
  and those frames (and ``crowd_hold`` more) are *dropped, flagged*: the observation has ``found=False`` and
  ``crowded=True`` (the tracks file keeps the flag).

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

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

from pose.errors import PoseError
from pose.estimator import PoseEstimator, PoseResult, estimate_translation, prepare_crop, to_camera_axes
from pose.smoothing import OneEuroFilter
from pose.sources import Frame, FrameSource, open_source
from pose.track import Track, Tracker, pose_box

if TYPE_CHECKING:
    from pose.workers import PoseWorkers

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
    crowded: bool = False  # dropped (found=False): another person overlapped this one, the pose may mix them


#: `PosePipeline` internal: the pose of this frame is dropped because another person overlaps the tracked one.
_CROWDED = object()


def overlapping_people(detections, box, min_score: float, min_height: float) -> int:
    """How many detected people stand on ``box`` (the tracked person's pose box, x0 y0 x1 y1): detections with
    score >= ``min_score``, at least ``min_height`` px tall, whose *core* (the middle half of the box's width:
    a HOG window is about twice as wide as the person in it) overlaps ``box`` horizontally (by > 10 % of its
    width) and by at least half of ``box``'s height vertically. Two or more: somebody passes in front of or behind the tracked person, and
    a full-frame pose may mix the two."""
    n = 0
    x0, y0, x1, y1 = (float(v) for v in box)
    for d in detections:
        bx0, by0, bx1, by1 = (float(v) for v in d.box)
        if d.score < min_score or by1 - by0 < min_height:
            continue
        q = 0.25 * (bx1 - bx0)
        overlap_x = min(bx1 - q, x1) - max(bx0 + q, x0)
        if overlap_x > 0.1 * (x1 - x0) and min(by1, y1) - max(by0, y0) >= 0.5 * (y1 - y0):
            n += 1
    return n


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
    only 1 is bundled), ``pose_workers`` (multi mode: worker processes running the people's pose calls in
    parallel, `pose.workers`; ``'auto'`` = one per CPU core, at most 4; 0 = all in this process), tracker
    settings via ``tracker_kw``. Auto mode while one person is tracked (module docstring): ``auto_check_every``
    (people-detector period: the cost of noticing a second person), ``auto_verify_every``, ``auto_other_ratio``,
    ``auto_fail_frames``; a person overlapping the tracked one: ``crowd_check_every`` (detector period while
    they overlap), ``crowd_hold`` (frames still dropped after the last sighting), ``crowd_score`` (least HOG
    score), ``crowd_ratio`` (least height, relative to the tracked person's detector box).

    Multi-mode frame: tracks are moved by their velocity, every track's crop is posed (in parallel in the
    workers), the poses refresh the track boxes. Every ``detect_every`` frames the people detector starts on the
    frame in a thread of this process and runs beside the pose calls of that frame and the next ``detect_lag``
    ones (a HOG run at 864 lines costs several frames' pose time; waiting for it idled the workers); its boxes,
    moved by how far their tracks moved since, then update the tracker (new people are posed from the next
    frame on). With no track yet, or on the frame auto mode switched to multi, the detections are used at once.
    """

    def __init__(self, *, multi_person: bool | str = "auto", layout: str = "kinect_v1", detect_every: int = 10,
                 detect_lag: int = 3, detector_height: int | None = 864, detector_scale_step: float = 1.05,
                 min_crop_height: int = 256, crop_margin: float = 0.2, max_people: int = 12,
                 min_pose_score: float = 0.5, smooth: bool = True, min_visibility: float = MIN_VISIBILITY,
                 model_complexity: int = 1, auto_fail_frames: int = 5, auto_check_every: int = 5,
                 auto_verify_every: int = 25, auto_other_ratio: float = 0.85, crowd_check_every: int = 1,
                 crowd_hold: int = 5, crowd_score: float = 0.7, crowd_ratio: float = 0.6, quiet: bool = True,
                 focal_px: float | None = None, drop_unposed: int = 3, tracker_kw: dict | None = None,
                 smoothing_kw: dict | None = None, pose_workers: int | str = "auto"):
        if multi_person not in (True, False, "auto"):
            raise ExtractError(f"multi_person must be True, False or 'auto', got {multi_person!r}")
        self.layout = _layout_name(layout)
        self.multi_person = multi_person
        self.mode = "multi" if multi_person is True else "single"
        self.switched_at: int | None = None
        self.detect_every = max(1, int(detect_every))
        self.detect_lag = max(0, int(detect_lag))
        self.detector_height = detector_height
        self.detector_scale_step = float(detector_scale_step)
        self.min_crop_height = int(min_crop_height)
        self.crop_margin = float(crop_margin)
        self.max_people = int(max_people)
        self.min_pose_score = float(min_pose_score)
        self.smooth = bool(smooth)
        self.min_visibility = float(min_visibility)
        self.model_complexity = int(model_complexity)
        self.auto_fail_frames = int(auto_fail_frames)
        self.auto_check_every = max(1, int(auto_check_every))
        self.auto_other_ratio = float(auto_other_ratio)
        self.crowd_check_every = max(1, int(crowd_check_every))
        self.crowd_hold = max(0, int(crowd_hold))
        self.auto_verify_every = max(1, int(auto_verify_every))
        self.crowd_score = float(crowd_score)
        self.crowd_ratio = float(crowd_ratio)
        self._last_check = -10 ** 9
        self._last_whole = 0  # whole-frame checks at frames 25, 50, ... (as before the second-person check)
        self._crowd_seen: int | None = None  # last frame the detector saw a second person on the tracked one
        self._crowd_watch = False            # checking every crowd_check_every frames
        self.quiet = quiet
        self.focal_px = focal_px
        self.drop_unposed = int(drop_unposed)
        if pose_workers == "auto":
            pose_workers = min(4, os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else 0
        if not isinstance(pose_workers, int) or isinstance(pose_workers, bool) or pose_workers < 0:
            raise ExtractError(f"pose_workers must be 'auto' or a count >= 0, got {pose_workers!r}")
        self.pose_workers = pose_workers
        self._workers: PoseWorkers | None = None
        self.smoothing_kw = dict(smoothing_kw or {})
        tkw = {"max_lost": 15, "min_hits": 3}
        tkw.update(tracker_kw or {})
        self.tracker = Tracker(**tkw)
        self._detector = None
        self._pool = None  # thread running the people detector (single path)
        self._full: PoseEstimator | None = None  # full-frame estimator (single mode)
        self._verify: PoseEstimator | None = None  # auto mode: checks a possible second person
        self._states: dict[int, _TrackState] = {}
        self._fails = 0
        self._last_detect = -10 ** 9
        self._pending = None  # multi mode: (future of detections, track boxes then, frame) of the running detector
        self.stats = {"frames": 0, "pose_calls": 0, "person_frames": 0, "detector_runs": 0,
                      "detector_s": 0.0, "pose_s": 0.0, "pose_wall_s": 0.0, "crowded_frames": 0}
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
            if self._workers is not None:
                self._workers.drop(t.track_id)

    def _detect(self, image, target_height: int | None = None):
        if self._detector is None:
            from pose.detect import PeopleDetector

            self._detector = PeopleDetector(target_height=self.detector_height, scale_step=self.detector_scale_step)
        t0 = time.perf_counter()
        dets = self._detector.detect(image, target_height)
        self.stats["detector_s"] += time.perf_counter() - t0
        self.stats["detector_runs"] += 1
        return dets

    def _submit(self, fn, *args):
        """Run ``fn(*args)`` in the people-detector thread (OpenCV and MediaPipe release the GIL, so it runs
        beside the pose calls): returns a future."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="people-detector")
        return self._pool.submit(fn, *args)

    def _detect_async(self, image, scale: float, around=None):
        """`_detect` in a background thread at ``scale`` (of the frame), on the whole frame or (``around`` a box)
        on the box widened by 0.75 of its height on each side and 0.25 above and below: returns a future of
        ``(detections in frame pixels, whole)``."""

        def run():
            h_img, w_img = image.shape[:2]
            if around is None:
                return self._detect(image, max(int(round(h_img * scale)), 1)), True
            bx0, by0, bx1, by1 = (float(v) for v in around)
            h = by1 - by0
            x0, x1 = int(max(bx0 - 0.75 * h, 0)), int(min(bx1 + 0.75 * h, w_img))
            y0, y1 = int(max(by0 - 0.25 * h, 0)), int(min(by1 + 0.25 * h, h_img))
            if (y1 - y0) * scale < 136 or (x1 - x0) * scale < 72:  # no detector window fits: the whole frame
                return self._detect(image, max(int(round(h_img * scale)), 1)), True
            dets = self._detect(image[y0:y1, x0:x1], int(round((y1 - y0) * scale)))
            off = np.array([x0, y0, x0, y0], float)
            return [type(d)(d.box + off, d.score) for d in dets], False

        return self._submit(run)

    def _pose(self, est: PoseEstimator, image, roi=None) -> PoseResult | None:
        t0 = time.perf_counter()
        res = est.process(image, roi=roi)
        self.stats["pose_s"] += time.perf_counter() - t0
        self.stats["pose_calls"] += 1
        return self._accept(res) if roi is not None else res

    def _accept(self, res: PoseResult | None) -> PoseResult | None:
        if res is not None and float(np.mean(res.visibility[list(_TORSO)])) < self.min_pose_score:
            return None  # a crop of clutter can yield a ghost skeleton with an unseen torso
        return res

    def _pose_tracks(self, image, tracks: list[Track], size, during=None) -> tuple[list, object]:
        """Pose every track's crop: in the worker processes when there are any, while ``during()`` (the
        detector) runs here. Returns the results (None where no pose) and what ``during`` returned."""
        rois = [self._roi(t.box, size) for t in tracks]
        t0 = time.perf_counter()
        if self.pose_workers == 0:
            out = [self._pose(self._state(t, crop=True).estimator, image, roi) for t, roi in zip(tracks, rois)]
            self.stats["pose_wall_s"] += time.perf_counter() - t0
            return out, during() if during is not None else None
        if self._workers is None:
            from pose.workers import PoseWorkers

            self._workers = PoseWorkers(self.pose_workers, self.model_complexity, quiet=self.quiet)
        crops = [prepare_crop(image, roi, self.min_crop_height) for roi in rois]
        self._workers.submit([(t.track_id, c, False) for t, c in zip(tracks, crops) if c is not None])
        extra = during() if during is not None else None
        done = iter(self._workers.collect())
        self.stats["pose_wall_s"] += time.perf_counter() - t0
        out = []
        for c in crops:
            if c is None:
                out.append(None)
                continue
            res, secs = next(done)
            self.stats["pose_s"] += secs
            self.stats["pose_calls"] += 1
            out.append(self._accept(res))
        return out, extra

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
        track = self.tracker.tracks[0] if self.tracker.tracks else None
        pending = None
        if self.multi_person == "auto" and track is not None:
            every = self.crowd_check_every if self._crowd_watch else self.auto_check_every
            if frame.index - self._last_check >= every:
                # the people detector runs in a thread while MediaPipe poses the frame (both release the GIL):
                # on an idle multi-core machine the check costs little wall time. Only people about as tall as
                # the tracked one matter: detect on a frame shrunk so that such a person is ~1.5 detector
                # windows tall (far cheaper than the full-size search).
                # Between whole-frame checks (every auto_verify_every frames: somebody anywhere) only the
                # surroundings of the tracked person are searched (somebody passing over them).
                self._last_check = frame.index
                whole = frame.index - self._last_whole >= self.auto_verify_every
                if whole:
                    self._last_whole = frame.index
                h_img = image.shape[0]
                scale = min((self.detector_height or h_img) / h_img, 200.0 / max(1.4 * track.height, 1.0))
                scale = max(scale, 160 / h_img)
                pending = self._detect_async(image, scale, None if whole else track.box)
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
        crowded = False
        if self.multi_person == "auto":
            switch = self._fails >= self.auto_fail_frames
            dets, whole = pending.result() if pending is not None else (None, False)
            if not switch and track is not None and dets is not None:
                from pose.detect import iou_matrix

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
                        if whole and other and tall and d.score >= self.tracker.new_track_score \
                                and self._is_other_person(image, d.box, track, size):
                            switch = True
                            break
                    if not switch:
                        self._crowd_check(dets, track, ref_h, frame.index)
                elif self._crowd_watch:
                    self._crowd_check([], track, 0.0, frame.index)
            crowded = self._crowd_seen is not None and frame.index - self._crowd_seen <= self.crowd_hold
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
        if crowded:
            self.stats["crowded_frames"] += 1
            return {track.track_id: _CROWDED}
        return {track.track_id: res}

    def _crowd_check(self, dets, track: Track, ref_h: float, frame_index: int) -> None:
        """Auto mode, single path: does the detector see a second person on the tracked one?"""
        if overlapping_people(dets, track.box, self.crowd_score, self.crowd_ratio * ref_h) >= 2:
            self._crowd_seen = frame_index
            self._crowd_watch = True
        elif self._crowd_watch and (self._crowd_seen is None or frame_index - self._crowd_seen > self.crowd_hold):
            self._crowd_watch = False

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
        if self._pending is None and frame.index - self._last_detect >= self.detect_every:
            # the detector runs in a thread over this frame and the next ``detect_lag`` ones, while the people
            # are posed; its boxes are then moved by how far their tracks moved since (`_apply_detections`)
            self._last_detect = frame.index
            snap = {t.track_id: t.box.copy() for t in self.tracker.tracks}
            self._pending = (self._submit(self._detect, image), snap, frame.index)
        tracks = sorted(self.tracker.tracks, key=lambda t: (not t.confirmed, -t.score, t.track_id))[: self.max_people]
        for t in tracks:
            self._state(t, crop=self.pose_workers == 0)
        poses, _ = self._pose_tracks(image, tracks, size)
        results = {}
        for t, res in zip(tracks, poses):
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
        if self._pending is not None and (not self._pending[1] or self._pending[2] == self.switched_at
                                          or frame.index - self._pending[2] >= self.detect_lag):
            self._apply_detections()
        self.tracker.merge_duplicates()
        self._drop(self.tracker.removed)
        live = {t.track_id for t in self.tracker.tracks}
        return {k: v for k, v in results.items() if k in live}

    def _apply_detections(self) -> None:
        """Feed the pending detector run (of frame ``f``) to the tracker now (frame ``f + detect_lag``): a box that
        matches a track's box of frame ``f`` is moved by how far that track moved since."""
        from pose.detect import Detection, iou_matrix

        future, snap, _ = self._pending
        self._pending = None
        dets = future.result()
        alive = [t for t in self.tracker.tracks if t.track_id in snap]
        if dets and alive:
            then = np.array([snap[t.track_id] for t in alive])
            iou = iou_matrix(np.array([d.box for d in dets]), then)
            moved = []
            for k, d in enumerate(dets):
                j = int(np.argmax(iou[k]))
                shift = alive[j].box - then[j] if iou[k, j] >= self.tracker.match_iou else 0.0
                moved.append(Detection(d.box + shift, d.score))
            dets = moved
        self.tracker.update(dets)
        self._drop(self.tracker.removed)

    def _observations(self, frame: Frame, results: dict) -> list[TrackObservation]:
        by_id = {t.track_id: t for t in self.tracker.tracks}
        out = []
        for tid in sorted(results):
            res, track = results[tid], by_id.get(tid)
            if track is None:
                continue
            st = self._states[tid]
            if res is None or res is _CROWDED:
                out.append(TrackObservation(
                    tid, frame.index, frame.timestamp_s, np.full((self._J, 3), np.nan),
                    np.zeros(self._J, bool), np.full((33, 2), np.nan), np.zeros(33), track.box.copy(),
                    self.layout, np.full((33, 3), np.nan), found=False, confirmed=track.confirmed,
                    crowded=res is _CROWDED))
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
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for est in (self._full, self._verify):
            if est is not None:
                est.close()
        self._full = self._verify = None
        if self._workers is not None:
            self._workers.close()
            self._workers = None
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
