"""Draw skeletons and track ids on frames, and write them as a video a person can check by eye.

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


def _mediapipe_bones():
    from pose.layouts import get_layout

    return get_layout("mediapipe33").bones


def draw_observations(image_bgr: np.ndarray, observations, min_visibility: float = 0.3,
                      label: str | None = None) -> np.ndarray:
    """Draw each observation's 2D skeleton (MediaPipe bones), box and ``id N`` on a copy of the image."""
    import cv2

    img = image_bgr.copy()
    h = img.shape[0]
    thick = max(1, round(h / 360))
    bones = _mediapipe_bones()
    for o in observations:
        col = track_colour(o.track_id)
        kp = np.asarray(o.keypoints2d)
        vis = np.asarray(o.visibility)
        ok = np.isfinite(kp).all(1) & (vis >= min_visibility)
        for a, b in bones:
            if ok[a] and ok[b]:
                cv2.line(img, tuple(np.round(kp[a]).astype(int)), tuple(np.round(kp[b]).astype(int)), col,
                         thick + 1, cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            cv2.circle(img, tuple(np.round(kp[j]).astype(int)), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
        if o.bbox is not None and np.isfinite(o.bbox).all():
            x0, y0, x1, y1 = np.round(o.bbox).astype(int)
            cv2.rectangle(img, (x0, y0), (x1, y1), col, 1)
            text = f"id {o.track_id}"
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

    def write(self, image_bgr: np.ndarray, observations, frame_index: int | None = None,
              mode: str | None = None) -> None:
        import cv2

        label = None
        if frame_index is not None:
            label = f"frame {frame_index}  people {len(observations)}" + (f"  ({mode})" if mode else "")
        img = draw_observations(image_bgr, observations, label=label)
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
