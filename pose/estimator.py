"""MediaPipe Pose (the *full* landmark model) as a context manager: one image (or one person crop) in,
33 world landmarks in metres + 2D pixel keypoints + per-joint visibility out.

    with PoseEstimator() as est:
        res = est.process(frame_bgr)                      # whole frame
        res = est.process(frame_bgr, roi=(x0, y0, x1, y1))  # one person crop, upscaled when small

Everything runs offline: mediapipe 0.10.21 bundles the person detector and the full landmark model
(``model_complexity=1``). Complexity 0 (lite) and 2 (heavy) are *downloaded* by mediapipe on first use; we refuse
them with a clear `EstimatorError` unless their model file is already installed, so nothing is fetched at run
time.

Axes of `PoseResult.world` are MediaPipe's: metres, origin at the hip midpoint, x to the image right, y down,
z away from the camera (smaller z = closer). `to_camera_axes` turns them into the Kinect camera convention
(x image-left, i.e. the sensor's left, y up, z away; right-handed) used by our layouts and `pose.synthetic`.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pose.errors import PoseError

N_LANDMARKS = 33
_MODEL_FILES = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}


class EstimatorError(PoseError):
    """The pose model cannot be used as asked (one line)."""


def _quiet_env() -> None:
    # mediapipe/TFLite/absl log through C++ glog/absl; these keep INFO lines out of the CLI output.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True):
    """Send what C/C++ code writes to file descriptor 2 to /dev/null; Python's ``sys.stderr`` keeps working.

    MediaPipe prints absl warnings straight to fd 2 when a graph starts ("Feedback manager requires ...",
    "Using NORM_RECT without IMAGE_DIMENSIONS ..."): harmless, but they bury the CLI's output.
    """
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def model_path(model_complexity: int) -> Path:
    """Where mediapipe keeps the landmark model of a complexity (it may not exist)."""
    import mediapipe

    return Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / _MODEL_FILES[model_complexity]


def check_model(model_complexity: int) -> None:
    if model_complexity not in _MODEL_FILES:
        raise EstimatorError(f"model_complexity must be 0, 1 or 2, got {model_complexity}")
    path = model_path(model_complexity)
    if not path.exists():
        raise EstimatorError(
            f"MediaPipe pose model_complexity={model_complexity} needs {path}, which is not installed "
            f"(mediapipe would download it; this project runs offline). Use model_complexity=1 "
            f"(the bundled full model) or copy {path.name} there.")


@dataclass
class PoseResult:
    world: np.ndarray        # (33, 3) float64 metres, MediaPipe axes, hip-centred
    keypoints2d: np.ndarray  # (33, 2) float64 pixels in the full image
    visibility: np.ndarray   # (33,) float64 in [0, 1]

    @property
    def score(self) -> float:
        return float(np.mean(self.visibility))

    def bbox(self, min_visibility: float = 0.3) -> tuple[float, float, float, float] | None:
        """Tight box (x0, y0, x1, y1) in pixels around the keypoints seen with enough visibility."""
        ok = self.visibility >= min_visibility
        if ok.sum() < 4:
            return None
        kp = self.keypoints2d[ok]
        return (float(kp[:, 0].min()), float(kp[:, 1].min()), float(kp[:, 0].max()), float(kp[:, 1].max()))


def to_camera_axes(world: np.ndarray) -> np.ndarray:
    """MediaPipe world axes (x right, y down, z away) -> Kinect camera axes (x left, y up, z away).

    A 180° rotation about z (a proper rotation: left/right joints keep their meaning). ``(..., 3)``.
    """
    out = np.array(world, dtype=np.float64, copy=True)
    out[..., 0] *= -1.0
    out[..., 1] *= -1.0
    return out


def estimate_translation(world: np.ndarray, keypoints2d: np.ndarray, visibility: np.ndarray,
                         image_size: tuple[int, int], focal_px: float | None = None,
                         min_visibility: float = 0.5) -> np.ndarray:
    """Camera-space position (metres, MediaPipe/OpenCV axes) of the world landmarks' origin (the hip midpoint).

    MediaPipe world landmarks are hip-centred and (nearly) camera-aligned, so with a pinhole camera of focal
    length ``focal_px`` (default: the larger image side, ≈ 53° horizontal field of view for a landscape frame)
    and the principal point at the image centre, each landmark i gives two linear equations in the translation
    t:  ``f·tx − (u−cx)·tz = (u−cx)·z − f·x`` and ``f·ty − (v−cy)·tz = (v−cy)·z − f·y``. Solved by least squares
    over the landmarks seen with ``visibility >= min_visibility``, weighted by visibility. Returns ``(3,)``,
    NaN when fewer than 4 landmarks are usable. The depth scales with the assumed focal length.
    """
    w, h = image_size
    f = float(focal_px or max(w, h))
    cx, cy = w / 2.0, h / 2.0
    X = np.asarray(world, dtype=np.float64)
    uv = np.asarray(keypoints2d, dtype=np.float64)
    vis = np.asarray(visibility, dtype=np.float64)
    ok = (vis >= min_visibility) & np.isfinite(X).all(1) & np.isfinite(uv).all(1)
    if ok.sum() < 4:
        return np.full(3, np.nan)
    X, uv, wgt = X[ok], uv[ok], np.sqrt(vis[ok])
    du, dv = uv[:, 0] - cx, uv[:, 1] - cy
    n = len(X)
    A = np.zeros((2 * n, 3))
    b = np.zeros(2 * n)
    A[:n, 0], A[:n, 2], b[:n] = f, -du, du * X[:, 2] - f * X[:, 0]
    A[n:, 1], A[n:, 2], b[n:] = f, -dv, dv * X[:, 2] - f * X[:, 1]
    ww = np.concatenate([wgt, wgt])
    t, *_ = np.linalg.lstsq(A * ww[:, None], b * ww, rcond=None)
    return t


@dataclass
class Crop:
    """What the model sees of one image: ``rgb`` (the crop, upscaled when small) and where it came from."""

    rgb: np.ndarray  # (h, w, 3) uint8 RGB
    x0: int          # crop origin in the full image, pixels
    y0: int
    scale: float     # crop pixels per image pixel

    def result(self, raw: tuple[np.ndarray, np.ndarray] | None) -> PoseResult | None:
        """`PoseEstimator.infer`'s output on ``rgb`` -> a `PoseResult` in full-image pixels."""
        if raw is None:
            return None
        norm, world = raw
        kp = np.empty((N_LANDMARKS, 2))
        kp[:, 0] = norm[:, 0] * self.rgb.shape[1] / self.scale + self.x0
        kp[:, 1] = norm[:, 1] * self.rgb.shape[0] / self.scale + self.y0
        return PoseResult(world=world, keypoints2d=kp, visibility=np.clip(norm[:, 2], 0.0, 1.0))


def prepare_crop(image_bgr: np.ndarray, roi=None, min_crop_height: int = 0) -> Crop | None:
    """The RGB image the model gets for ``image_bgr`` or its ``roi`` (x0, y0, x1, y1, clipped to the image;
    upscaled to ``min_crop_height`` rows when smaller). None when the roi is under 8 pixels."""
    import cv2

    h, w = image_bgr.shape[:2]
    x0 = y0 = 0
    crop = image_bgr
    if roi is not None:
        x0, y0 = max(0, int(np.floor(roi[0]))), max(0, int(np.floor(roi[1])))
        x1, y1 = min(w, int(np.ceil(roi[2]))), min(h, int(np.ceil(roi[3])))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = image_bgr[y0:y1, x0:x1]
    ch, cw = crop.shape[:2]
    scale = 1.0
    if roi is not None and ch < min_crop_height:
        scale = min_crop_height / ch
        crop = cv2.resize(crop, (max(1, round(cw * scale)), min_crop_height), interpolation=cv2.INTER_CUBIC)
    return Crop(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), x0, y0, scale)


class PoseEstimator:
    """One MediaPipe Pose graph. In video mode (``static_image_mode=False``, the default) it tracks the person
    from frame to frame, so give each tracked person their own estimator.

    ``min_crop_height``: a person crop smaller than this (pixels) is upscaled to it before the model sees it
    (the landmark model works at 256×256; small pedestrians are found far more often when enlarged).
    """

    def __init__(self, model_complexity: int = 1, *, static_image_mode: bool = False,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 min_crop_height: int = 256, quiet: bool = True):
        check_model(model_complexity)
        _quiet_env()
        self.min_crop_height = int(min_crop_height)
        self.quiet = quiet
        self._calls = 0
        self._last_ts_us = -1
        with native_stderr_silenced(quiet):
            import mediapipe as mp

            # Our own One-Euro filter smooths (pose/smoothing.py); MediaPipe's smoothing assumes a fixed image
            # frame, which a moving person crop is not.
            self._pose = mp.solutions.pose.Pose(
                static_image_mode=static_image_mode, model_complexity=model_complexity,
                smooth_landmarks=False, enable_segmentation=False,
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence)

    def process(self, image_bgr: np.ndarray, roi=None) -> PoseResult | None:
        """Pose of the (main) person in ``image_bgr`` (H, W, 3) uint8, or in its ``roi`` (x0, y0, x1, y1)
        pixels (clipped to the image). None when no person is found."""
        if self._pose is None:
            raise EstimatorError("PoseEstimator is closed")
        crop = prepare_crop(image_bgr, roi, self.min_crop_height)
        if crop is None:
            return None
        return crop.result(self.infer(crop.rgb))

    def infer(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The model on an RGB image as it is: normalised landmarks ``(33, 3)`` (x, y in [0, 1] of the image,
        visibility) and world landmarks ``(33, 3)``, or None. `process` = `prepare_crop` + this + `Crop.result`;
        the split lets worker processes run the model on crops cut in the main process (`pose.workers`)."""
        if self._pose is None:
            raise EstimatorError("PoseEstimator is closed")
        with native_stderr_silenced(self.quiet and self._calls < 3):
            res = self._pose.process(rgb)
        self._calls += 1
        if res.pose_landmarks is None or res.pose_world_landmarks is None:
            return None
        norm = np.array([(lm.x, lm.y, lm.visibility) for lm in res.pose_landmarks.landmark], dtype=np.float64)
        world = np.array([(lm.x, lm.y, lm.z) for lm in res.pose_world_landmarks.landmark], dtype=np.float64)
        return norm, world

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # graphs hold threads; close them even when a caller forgets
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
