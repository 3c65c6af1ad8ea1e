"""The live overlay (`cagereid live --overlay out.mp4`, `--show`): video frames with each person's box,
skeleton, name or ``unknown`` with confidence and trail, drawn off the real-time path.

The producer stage hands each frame, its people and the current names (`stream.messages.NamesMsg`, sent by the
supervisor from the decisions) to `OverlaySink.offer`, which never waits: the frame goes into a small queue
drained by a drawing thread, and when the thread falls behind the frame is dropped and counted
(``overlay_dropped``) instead of slowing the pipeline. Drawing is `pose.overlay` (the same as `cagereid extract
--overlay`); the video is written to a temp file and renamed at the end.
"""
from __future__ import annotations

import os
import queue
import sys
import threading

from stream.errors import StreamError


def display_available() -> bool:
    """Whether an OpenCV window can open here (a desktop session on Linux; always assumed elsewhere)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_show(show: bool) -> None:
    """``--show`` without a display is a one-line error before anything starts."""
    if show and not display_available():
        raise StreamError("--show needs a display (DISPLAY/WAYLAND_DISPLAY is not set here); write the video with "
                          "--overlay out.mp4 instead")


class OverlaySink:
    """``offer(image, observations, frame_index, names)`` per frame (never blocks), ``close()`` at the end."""

    def __init__(self, path: str | None = None, show: bool = False, fps: float = 25.0, capacity: int = 4,
                 window: str = "cagereid live") -> None:
        from pose.overlay import OverlayWriter

        self.writer = OverlayWriter(path, fps=fps) if path else None
        self.show, self.window = show, window
        self.queue: queue.Queue = queue.Queue(maxsize=capacity)
        self.offered = self.dropped = self.drawn = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="overlay", daemon=True)
        self._thread.start()

    def offer(self, image, observations, frame_index: int, names: dict | None = None, mode: str | None = None) -> bool:
        """Queue one frame for drawing; False (dropped, counted) when the drawing thread is behind."""
        self.offered += 1
        try:
            self.queue.put_nowait((image, list(observations), frame_index, dict(names or {}), mode))
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # keep draining so offer() never blocks
            image, observations, frame_index, names, mode = item
            try:
                self._draw(image, observations, frame_index, names, mode)
                self.drawn += 1
            except Exception as exc:  # noqa: BLE001 - a broken overlay must not take the live pipeline down
                self.error = f"{type(exc).__name__}: {exc}"

    def _draw(self, image, observations, frame_index, names, mode) -> None:
        if self.writer is not None:
            self.writer.write(image, observations, frame_index, mode=mode, names=names)
        if self.show:
            import cv2

            from pose.overlay import draw_observations

            cv2.imshow(self.window, draw_observations(image, observations, names=names,
                                                      trails=self.writer.trails if self.writer else None))
            cv2.waitKey(1)

    def close(self, timeout_s: float = 30.0):
        """Draw what is queued, then finish the video (renamed into place); returns its path or None."""
        self.queue.put(None)
        self._thread.join(timeout_s)
        if self.show:
            try:
                import cv2

                cv2.destroyWindow(self.window)
            except Exception:  # noqa: BLE001 - no window left to close
                pass
        return self.writer.close() if self.writer is not None else None
