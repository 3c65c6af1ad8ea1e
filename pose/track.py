"""Multi-person tracking by detection: boxes + IoU + Hungarian assignment, ByteTrack-style.

Each processed frame:

1. `Tracker.predict()` moves every track's box by its velocity (pixels per frame, exponentially smoothed).
2. On detection frames, `Tracker.update(detections)` associates in two passes (ByteTrack, Zhang et al. 2022):
   confident detections (score >= ``high_score``) first, then the weak ones, each pass a Hungarian assignment
   (`scipy.optimize.linear_sum_assignment`) on ``1 - IoU`` with pairs below ``match_iou`` forbidden. Optionally
   the cost adds a keypoint-distance term (``joint_weight``) when both the track and the detection carry
   2D keypoints. Unmatched confident detections start new *tentative* tracks; weak ones never do.
3. Between detections the pose found in a track's crop refreshes its box (`Tracker.observe_pose`), so a
   person stays tracked on frames where the detector does not run or misses them.

A track becomes *confirmed* after ``min_hits`` observations (detections or poses) and is deleted after
``max_lost`` frames with neither, or when its box leaves the image. Track ids start at 1 and are never
reused. Two tracks whose boxes overlap by more than ``duplicate_iou`` are merged into the older one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from pose.detect import Detection, iou_matrix


@dataclass
class Track:
    track_id: int
    box: np.ndarray                  # (4,) x0, y0, x1, y1 pixels (detector-style: whole body with margin)
    score: float
    first_frame: int
    last_seen: int                   # last frame with a detection or a pose
    hits: int = 1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # (4,) pixels per frame
    keypoints: np.ndarray | None = None  # (K, 2) last 2D keypoints (for the optional joint cue)
    confirmed: bool = False
    pose_misses: int = 0             # consecutive frames whose crop gave no pose (kept by the caller)
    _anchor: tuple[int, np.ndarray] | None = None  # (frame, box) of the last measurement, for velocity

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])


def pose_box(keypoints2d: np.ndarray, visibility: np.ndarray, min_visibility: float = 0.3):
    """A detector-style box around a pose's visible 2D keypoints: the tight box, made taller (the head top is
    above the nose, the heel points are not the soles) and at least 0.4 × height wide. None if too few."""
    ok = np.asarray(visibility) >= min_visibility
    if ok.sum() < 4:
        return None
    kp = np.asarray(keypoints2d)[ok]
    x0, y0 = kp.min(axis=0)
    x1, y1 = kp.max(axis=0)
    h = max(y1 - y0, 1.0)
    cx = 0.5 * (x0 + x1)
    w = max(x1 - x0, 0.4 * h) * 1.2
    return np.array([cx - w / 2, y0 - 0.15 * h, cx + w / 2, y1 + 0.08 * h])


class Tracker:
    def __init__(self, *, high_score: float = 0.8, low_score: float = 0.2, new_track_score: float = 1.0,
                 match_iou: float = 0.25, min_hits: int = 3, max_lost: int = 15, duplicate_iou: float = 0.6,
                 joint_weight: float = 0.0, velocity_smoothing: float = 0.6):
        self.high_score = high_score
        self.low_score = low_score
        self.new_track_score = new_track_score
        self.match_iou = match_iou
        self.min_hits = min_hits
        self.max_lost = max_lost
        self.duplicate_iou = duplicate_iou
        self.joint_weight = joint_weight
        self.velocity_smoothing = velocity_smoothing
        self.tracks: list[Track] = []
        self.frame = -1
        self._next_id = 1
        self.removed: list[Track] = []  # tracks deleted at the last step (callers free per-track state)
        self._suppressed: list[tuple[np.ndarray, int]] = []  # (box, until frame): no new tracks there

    # ------------------------------------------------------------------ life cycle
    def new_track(self, box, score: float, frame: int | None = None) -> Track:
        frame = self.frame if frame is None else frame
        t = Track(self._next_id, np.asarray(box, dtype=np.float64).copy(), float(score), frame, frame)
        t._anchor = (frame, t.box.copy())
        self._next_id += 1
        self.tracks.append(t)
        self._maybe_confirm(t)
        return t

    def predict(self, frame: int, image_size: tuple[int, int] | None = None) -> None:
        """Advance to ``frame``: move boxes by their velocity, delete stale tracks and tracks that left the image
        (``image_size`` = (width, height))."""
        steps = frame - self.frame if self.frame >= 0 else 0
        self.frame = frame
        self.removed = []
        self._suppressed = [(b, until) for b, until in self._suppressed if until >= frame]
        keep = []
        for t in self.tracks:
            if steps > 0:
                t.box = t.box + t.velocity * steps
            gone = frame - t.last_seen > self.max_lost
            if image_size is not None and not gone:
                w, h = image_size
                x0, y0, x1, y1 = t.box
                inside_w = min(x1, w) - max(x0, 0)
                inside_h = min(y1, h) - max(y0, 0)
                gone = inside_w < 0.3 * (x1 - x0) or inside_h < 0.3 * (y1 - y0)
            (self.removed if gone else keep).append(t)
        self.tracks = keep

    def _measure(self, t: Track, box: np.ndarray, blend: float = 1.0) -> None:
        box = np.asarray(box, dtype=np.float64)
        new = blend * box + (1 - blend) * t.box
        if t._anchor is not None and self.frame > t._anchor[0]:
            v = (new - t._anchor[1]) / (self.frame - t._anchor[0])
            a = self.velocity_smoothing
            t.velocity = a * t.velocity + (1 - a) * v
        t._anchor = (self.frame, new.copy())
        t.box = new
        if t.last_seen != self.frame:
            t.hits += 1
        t.last_seen = self.frame
        self._maybe_confirm(t)

    def _maybe_confirm(self, t: Track) -> None:
        if not t.confirmed and t.hits >= self.min_hits:
            t.confirmed = True

    # ------------------------------------------------------------------ association
    def _cost(self, tracks: list[Track], dets: list[Detection], det_kp: list | None) -> np.ndarray:
        iou = iou_matrix(np.array([t.box for t in tracks]), np.array([d.box for d in dets]))
        cost = 1.0 - iou
        if self.joint_weight > 0 and det_kp is not None:
            for i, t in enumerate(tracks):
                for j, kp in enumerate(det_kp):
                    if t.keypoints is None or kp is None:
                        continue
                    d = np.nanmean(np.linalg.norm(t.keypoints - kp, axis=-1)) / max(t.height, 1.0)
                    if np.isfinite(d):
                        cost[i, j] += self.joint_weight * min(d, 1.0)
        cost[iou < self.match_iou] = np.inf
        return cost

    @staticmethod
    def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
        if cost.size == 0:
            return []
        finite = np.where(np.isfinite(cost), cost, 1e6)
        rows, cols = linear_sum_assignment(finite)
        return [(int(r), int(c)) for r, c in zip(rows, cols) if np.isfinite(cost[r, c])]

    def update(self, detections: list[Detection], det_keypoints: list | None = None) -> list[Track]:
        """Associate this frame's detections (call after `predict`). Returns the tracks created."""
        high = [i for i, d in enumerate(detections) if d.score >= self.high_score]
        low = [i for i, d in enumerate(detections) if self.low_score <= d.score < self.high_score]
        unmatched = list(range(len(self.tracks)))
        for group in (high, low):
            if not group or not unmatched:
                continue
            trs = [self.tracks[i] for i in unmatched]
            dets = [detections[i] for i in group]
            kps = [det_keypoints[i] for i in group] if det_keypoints is not None else None
            pairs = self._assign(self._cost(trs, dets, kps))
            matched_tracks = set()
            for r, c in pairs:
                t, d = trs[r], dets[c]
                self._measure(t, d.box, blend=0.7)
                t.score = d.score
                matched_tracks.add(unmatched[r])
                group_idx = group[c]
                detections[group_idx] = Detection(d.box, -np.inf)  # consumed
            unmatched = [i for i in unmatched if i not in matched_tracks]
        created = []
        for i in high:
            d = detections[i]
            if np.isfinite(d.score) and d.score >= self.new_track_score:
                if self.tracks and iou_matrix(d.box[None], np.array([t.box for t in self.tracks])).max() > 0.3:
                    continue  # overlaps a track it did not match: more likely a second box on the same person
                if self._suppressed and iou_matrix(d.box[None], np.array([b for b, _ in self._suppressed])).max() > 0.5:
                    continue  # a place recently rejected as "no person there"
                created.append(self.new_track(d.box, d.score))
        self._merge_duplicates()
        return created

    def observe_pose(self, track: Track, keypoints2d: np.ndarray, visibility: np.ndarray) -> None:
        """A pose was found in ``track``'s crop: refresh its box from the keypoints (and keep it alive)."""
        box = pose_box(keypoints2d, visibility)
        track.keypoints = np.asarray(keypoints2d, dtype=np.float64)
        if box is not None:
            self._measure(track, box, blend=0.5)

    def _merge_duplicates(self) -> None:
        if len(self.tracks) < 2:
            return
        iou = iou_matrix(np.array([t.box for t in self.tracks]), np.array([t.box for t in self.tracks]))
        np.fill_diagonal(iou, 0)
        dead = set()
        for i, j in zip(*np.where(np.triu(iou) > self.duplicate_iou)):
            if i in dead or j in dead:
                continue
            a, b = self.tracks[i], self.tracks[j]
            # keep the confirmed / older one
            loser = j if (a.confirmed, -a.first_frame) >= (b.confirmed, -b.first_frame) else i
            dead.add(loser)
        if dead:
            self.removed.extend(self.tracks[i] for i in sorted(dead))
            self.tracks = [t for k, t in enumerate(self.tracks) if k not in dead]

    def remove(self, track: Track, suppress_frames: int = 0) -> None:
        """Drop ``track`` now (it is added to ``removed``); with ``suppress_frames`` no new track starts on
        (nearly) the same box for that many frames (a static false positive is not re-created every time)."""
        if track in self.tracks:
            self.tracks.remove(track)
            self.removed.append(track)
        if suppress_frames > 0:
            self._suppressed.append((track.box.copy(), self.frame + suppress_frames))

    def merge_duplicates(self) -> None:
        """Public: merge tracks that now cover the same person (e.g. after pose-box refreshes)."""
        self._merge_duplicates()
