"""Draw skeletons, boxes, names and trails on frames, and write them as a video a person can check by eye.

Per person: the box in the track's colour, the skeleton with the person's left side orange and right side
blue (centre bones in the track colour), a tag with the name and confidence (``ana 0.92``, ``unknown 0.60``;
``id N`` where nobody has decided yet) and a short trail of where the hips were over the last frames
(`Trails`). The same drawing serves `cagereid extract --overlay` and the live overlay.

Writers: ``.mp4`` uses the ``mp4v`` codec, ``.avi`` ``MJPG`` (the codecs OpenCV can write on these machines;
the H.264 ``avc1`` writer is not available). The video is written to a temporary file and renamed at the end,
so a crash leaves no half-written file under the final name; `OverlayWriter.close` also runs after a source
broke half-way, keeping the frames drawn so far.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pose.errors import PoseError

_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}


class OverlayError(PoseError):
    """An overlay that cannot be drawn or written (one line)."""


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per track id (golden-ratio hue steps)."""
    import colorsys

    h = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


LEFT_BGR = (0, 140, 255)  # the person's left side: orange
RIGHT_BGR = (255, 120, 0)  # the person's right side: blue
TRAIL_FRAMES = 25  # about one second of hip positions


def _mediapipe_bones_and_sides():
    """MediaPipe bones and, per bone, -1 (person's left), +1 (right) or 0 (centre, e.g. across the hips)."""
    from pose.layouts import get_layout

    lay = get_layout("mediapipe33")
    side = [(-1 if n.startswith("left") or n.endswith("_left") else 1 if n.startswith("right") or n.endswith("_right")
             else 0) for n in lay.joints]
    return lay.bones, [side[a] if side[a] == side[b] else 0 for a, b in lay.bones]


def _hips(o) -> np.ndarray | None:
    kp = np.asarray(o.keypoints2d, float)
    mid = kp[[23, 24]]  # MediaPipe left/right hip
    if np.isfinite(mid).all():
        return mid.mean(0)
    if o.bbox is not None and np.isfinite(o.bbox).all():
        x0, y0, x1, y1 = o.bbox
        return np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    return None


class Trails:
    """The last ``frames`` hip positions of every track (a short trail of where each person walked)."""

    def __init__(self, frames: int = TRAIL_FRAMES) -> None:
        self.frames = frames
        self._pts: dict[int, list[tuple[int, np.ndarray]]] = {}

    def update(self, observations, frame_index: int) -> None:
        """Add this frame's hip positions. A jump of more than half the person's box height since the track's
        last point (a tracker id switch, not a step) starts the trail afresh."""
        for o in observations:
            p = _hips(o)
            if p is None:
                continue
            pts = self._pts.setdefault(int(o.track_id), [])
            if pts and o.bbox is not None and np.isfinite(o.bbox).all():
                if np.linalg.norm(p - pts[-1][1]) > 0.5 * abs(o.bbox[3] - o.bbox[1]):
                    pts.clear()
            pts.append((frame_index, p))
        for tid in list(self._pts):
            pts = [(f, p) for f, p in self._pts[tid] if frame_index - f < self.frames]
            if pts:
                self._pts[tid] = pts
            else:
                del self._pts[tid]

    def points(self, track_id: int) -> list[np.ndarray]:
        return [p for _, p in self._pts.get(int(track_id), [])]


def tag_text(track_id: int, names: dict | None) -> str:
    """``name 0.92`` / ``unknown 0.60`` from ``names[track] = (identity, confidence)`` (just the name when the
    confidence is None); ``id N`` otherwise."""
    if names and track_id in names:
        identity, conf = names[track_id]
        if identity and identity != "...":
            return identity if conf is None else f"{identity} {conf:.2f}"
    return f"id {track_id}"


def draw_observations(image_bgr: np.ndarray, observations, min_visibility: float = 0.3,
                      label: str | None = None, names: dict | None = None, trails: Trails | None = None) -> np.ndarray:
    """Draw each observation's box, 2D skeleton (MediaPipe bones; the person's left orange, right blue), tag
    (`tag_text`: the name and confidence from ``names`` {track: (identity, confidence)}, else ``id N``) and
    trail (``trails``) on a copy of the image."""
    import cv2

    img = image_bgr.copy()
    h = img.shape[0]
    thick = max(1, round(h / 360))
    bones, sides = _mediapipe_bones_and_sides()
    for o in observations:
        col = track_colour(o.track_id)
        if trails is not None:
            pts = trails.points(o.track_id)
            for k in range(1, len(pts)):
                cv2.line(img, tuple(np.round(pts[k - 1]).astype(int)), tuple(np.round(pts[k]).astype(int)), col,
                         max(1, thick * k * 2 // max(len(pts), 1)), cv2.LINE_AA)
        kp = np.asarray(o.keypoints2d)
        vis = np.asarray(o.visibility)
        ok = np.isfinite(kp).all(1) & (vis >= min_visibility)
        for (a, b), side in zip(bones, sides):
            if ok[a] and ok[b]:
                bone_col = LEFT_BGR if side < 0 else RIGHT_BGR if side > 0 else col
                cv2.line(img, tuple(np.round(kp[a]).astype(int)), tuple(np.round(kp[b]).astype(int)), bone_col,
                         thick + 1, cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            cv2.circle(img, tuple(np.round(kp[j]).astype(int)), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
        if o.bbox is not None and np.isfinite(o.bbox).all():
            x0, y0, x1, y1 = np.round(o.bbox).astype(int)
            cv2.rectangle(img, (x0, y0), (x1, y1), col, thick)
            text = tag_text(int(o.track_id), names)
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, thick)
            cv2.rectangle(img, (x0, max(0, y0 - th - 6)), (x0 + tw + 4, max(th + 6, y0)), col, -1)
            cv2.putText(img, text, (x0 + 2, max(th + 2, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick,
                        (0, 0, 0), thick, cv2.LINE_AA)
    if label:
        cv2.putText(img, label, (8, 8 + 14 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, (255, 255, 255),
                    thick + 1, cv2.LINE_AA)
        cv2.putText(img, label, (8, 8 + 14 * thick), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, (0, 0, 0), thick,
                    cv2.LINE_AA)
    return img


class OverlayWriter:
    """``write(frame, observations, frame_index)`` per frame, then ``close()`` (renames into place)."""

    def __init__(self, path, fps: float = 25.0):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _CODECS:
            raise OverlayError(f"{path}: overlay video must end in one of {', '.join(sorted(_CODECS))}")
        self.fourcc = _CODECS[suffix]
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        self._writer = None
        self.frames = 0
        self.trails = Trails()

    def write(self, image_bgr: np.ndarray, observations, frame_index: int | None = None,
              mode: str | None = None, names: dict | None = None) -> None:
        """Draw (`draw_observations`, with this writer's trails; ``names`` {track: (identity, confidence)}) and
        append one frame."""
        import cv2

        label = None
        if frame_index is not None:
            label = f"frame {frame_index}  people {len(observations)}" + (f"  ({mode})" if mode else "")
            self.trails.update(observations, frame_index)
        img = draw_observations(image_bgr, observations, label=label, names=names, trails=self.trails)
        if self._writer is None:
            h, w = img.shape[:2]
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                raise OverlayError(f"{self.path}: OpenCV cannot write {self.fourcc} video here")
        self._writer.write(img)
        self.frames += 1

    def close(self) -> Path | None:
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp.exists():
            self._tmp.unlink()
