"""Frame sources: a camera, a video file, a folder of images or a stream URL, each frame with its timestamp.

>>> with open_source("../shared/data/video/openpose_walk.avi", max_frames=2) as src:
...     [(f.index, round(f.timestamp_s, 3), f.image_bgr.shape) for f in src]
[(0, 0.0, (720, 1280, 3)), (1, 0.02, (720, 1280, 3))]

Timestamps (seconds, float): video files use frame index / fps (the container's clock, deterministic);
image folders use index / ``fps`` (default 25); cameras and URLs use the capture clock when the backend
gives one, else the wall clock since the first frame.

Failures are one-line `SourceError`s that name the source and say how far it got:
a source that cannot be opened fails in `open_source`; a video that stops decoding before the frame count
its header announces, or an unreadable image in a folder, raises *after* every good frame was yielded,
so a consumer keeps what it already processed.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from pose.errors import PoseError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")

# A header frame count is an estimate for some containers: a stream that ends this many frames early is
# taken as a normal end, not as corruption.
_END_SLACK = 2


class SourceError(PoseError):
    """A frame source cannot be opened or broke while reading (one line, names the source)."""


@dataclass(frozen=True)
class Frame:
    index: int            # 0-based position in the source (frames that failed to decode are not counted)
    timestamp_s: float    # seconds since the start of the source
    image_bgr: np.ndarray  # (H, W, 3) uint8, OpenCV channel order


class FrameSource:
    """Iterable of `Frame`s. Use as a context manager (or call `close`) to release cameras and files.

    Attributes: ``spec`` (what was asked for), ``kind`` ('camera' | 'video' | 'images' | 'url'),
    ``name`` (a short stem for output files), ``fps`` (nominal, may be 0 for live sources),
    ``frame_count`` (None when unknown), ``size`` ((width, height) or None), ``frames_read``.
    """

    kind: str = "?"

    def __init__(self, spec, name: str, fps: float, frame_count: int | None, size, max_frames: int | None):
        self.spec = spec
        self.name = name
        self.fps = float(fps or 0.0)
        self.frame_count = frame_count
        self.size = size
        self.max_frames = max_frames
        self.frames_read = 0
        self._iterated = False

    def __iter__(self) -> Iterator[Frame]:
        if self._iterated:
            raise SourceError(f"{self.describe()}: a frame source can be iterated only once")
        self._iterated = True
        try:
            for frame in self._frames():
                yield frame
                self.frames_read += 1
                if self.max_frames is not None and self.frames_read >= self.max_frames:
                    break
        finally:
            self.close()

    def __len__(self) -> int:
        n = self.frame_count if self.frame_count is not None else 0
        return min(n, self.max_frames) if self.max_frames is not None else n

    def expected_frames(self) -> int | None:
        """How many frames iteration should give (None when unknown, e.g. a camera)."""
        if self.frame_count is None:
            return self.max_frames
        return min(self.frame_count, self.max_frames) if self.max_frames is not None else self.frame_count

    def describe(self) -> str:
        return f"{self.kind} {self.spec}"

    def _frames(self) -> Iterator[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CaptureSource(FrameSource):
    """Anything `cv2.VideoCapture` opens: a camera index, a video file, a stream URL."""

    def __init__(self, spec, kind: str, cap, name: str, max_frames: int | None):
        import cv2

        self.kind = kind
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if np.isfinite(fps) and 0 < fps < 1000 else 0.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if kind == "video" else 0
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        super().__init__(spec, name, fps, count if count > 0 else None, size if size[0] > 0 else None,
                         max_frames)

    def _frames(self) -> Iterator[Frame]:
        import cv2

        t0 = None
        index = 0
        while True:
            if self.max_frames is not None and index >= self.max_frames:
                return
            ok, image = self._cap.read()
            if not ok or image is None:
                break
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            if self.kind == "video" and self.fps > 0:
                ts = index / self.fps
            else:
                msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
                now = time.monotonic()
                if t0 is None:
                    t0 = (now, msec)
                if msec and msec > 0 and t0[1] is not None and msec >= t0[1]:
                    ts = (msec - t0[1]) / 1000.0
                else:
                    t0 = (t0[0], None)  # the backend's clock is unusable: stay on the wall clock
                    ts = now - t0[0]
            yield Frame(index, float(ts), image)
            index += 1
        # read() failed: a normal end, or a broken file?
        if self.kind == "video" and self.frame_count is not None and index < self.frame_count - _END_SLACK:
            raise SourceError(
                f"video {self.spec}: could not decode frame {index} of {self.frame_count} "
                f"(file truncated or corrupt); stopped after {index} frames")
        if self.kind in ("camera", "url") and index == 0:
            raise SourceError(f"{self.kind} {self.spec}: opened but delivered no frame")

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class ImageFolderSource(FrameSource):
    kind = "images"

    def __init__(self, folder: Path, files: list[Path], fps: float, max_frames: int | None):
        import cv2

        first = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise SourceError(f"image folder {folder}: cannot read {files[0].name}")
        self._files = files
        self._first = first
        super().__init__(str(folder), folder.name or "images", fps, len(files),
                         (first.shape[1], first.shape[0]), max_frames)

    def _frames(self) -> Iterator[Frame]:
        import cv2

        for index, path in enumerate(self._files):
            image = self._first if index == 0 else cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise SourceError(f"image folder {self.spec}: cannot read {path.name} "
                                  f"(frame {index} of {len(self._files)}); stopped after {index} frames")
            yield Frame(index, index / self.fps, image)


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _is_camera(spec) -> bool:
    return isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit())


def open_source(spec, *, max_frames: int | None = None, fps: float | None = None) -> FrameSource:
    """Open ``spec``: an int camera index or a digit string ("0"), a video file, a folder of images
    (sorted in natural order: ``2.png`` before ``10.png``) or a URL (``rtsp://``, ``http://``, ...).

    ``max_frames`` stops after that many frames; ``fps`` sets the frame rate of an image folder (default 25)
    or overrides a video's header rate for timestamps. Raises `SourceError` (one line) when it cannot open.
    """
    import cv2

    if max_frames is not None and max_frames <= 0:
        raise SourceError(f"max_frames must be positive, got {max_frames}")
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if _is_camera(spec):
        index = int(spec)
        cap = cv2.VideoCapture(index)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"camera {index}: cannot open (no such device, or it is busy)")
        src = CaptureSource(index, "camera", cap, f"camera{index}", max_frames)
        if fps:
            src.fps = float(fps)
        return src
    if not isinstance(spec, str) or not spec:
        raise SourceError(f"not a frame source: {spec!r} (give a camera index, video file, image folder or URL)")
    if "://" in spec:
        cap = cv2.VideoCapture(spec)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"stream {spec}: cannot open")
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.split("://", 1)[1]).strip("_")[:60] or "stream"
        return CaptureSource(spec, "url", cap, name, max_frames)
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                       key=_natural_key)
        if not files:
            raise SourceError(f"image folder {spec}: no images ({', '.join(IMAGE_SUFFIXES[:4])}, ...) in it")
        return ImageFolderSource(path, files, float(fps or 25.0), max_frames)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise SourceError(f"{spec}: a single image is not a frame source; put images in a folder")
    if path.stat().st_size == 0:
        raise SourceError(f"video {spec}: file is empty")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"video {spec}: cannot open (not a video OpenCV can decode, or corrupt header)")
    src = CaptureSource(str(path), "video", cap, path.stem, max_frames)
    if fps:
        src.fps = float(fps)
    return src
