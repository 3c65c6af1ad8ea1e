"""People detection with OpenCV's built-in HOG + linear SVM people detector (Dalal & Triggs; the weights are
compiled into OpenCV, nothing is downloaded).

The detector window is 64×128 pixels for a person about 96 pixels tall, so small pedestrians need the frame
upscaled first: ``PeopleDetector(target_height=864)`` resizes every frame to that height before detection
(1.5× for a 576-line PAL frame, 1.2× for 720p); people shorter than roughly 96/scale pixels are missed.
Boxes come back in original-frame pixels with their SVM scores, after non-maximum suppression.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Detection:
    box: np.ndarray  # (4,) float64 x0, y0, x1, y1 pixels
    score: float     # HOG SVM margin (> 0 means "person"; ~0.5 weak, > 1 confident)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a (N, 4)`` with every box in ``b (M, 4)`` -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.4) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first.

    A box mostly *inside* a better one (HOG often fires on a torso inside a full-body window) is also dropped.
    """
    order = np.argsort(-np.asarray(scores))
    keep: list[int] = []
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for i in order:
        if keep:
            kb = boxes[keep]
            if iou_matrix(boxes[i:i + 1], kb).max() > iou_threshold:
                continue
            # fraction of box i covered by a kept box
            ix0 = np.maximum(boxes[i, 0], kb[:, 0]); iy0 = np.maximum(boxes[i, 1], kb[:, 1])
            ix1 = np.minimum(boxes[i, 2], kb[:, 2]); iy1 = np.minimum(boxes[i, 3], kb[:, 3])
            inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
            area = max((boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1]), 1e-9)
            if (inter / area).max() > 0.7:
                continue
        keep.append(int(i))
    return np.array(keep, dtype=int)


class PeopleDetector:
    """``detect(image_bgr) -> list[Detection]``.

    ``target_height``: frames are resized to this height before detection (None: native size).
    ``min_score``: detections with a lower SVM score are dropped (the tracker uses scores >= ``high_score``
    to start tracks and the weaker ones only to keep existing tracks alive, ByteTrack-style).
    """

    def __init__(self, target_height: int | None = 864, min_score: float = 0.0, win_stride: int = 8,
                 scale_step: float = 1.05, nms_iou: float = 0.4):
        import cv2

        if not hasattr(cv2, "HOGDescriptor"):
            raise RuntimeError("this OpenCV build has no cv2.HOGDescriptor (OpenCV 5 main wheels moved it to "
                               "contrib): install opencv-contrib-python")
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.target_height = target_height
        self.min_score = float(min_score)
        self.win_stride = int(win_stride)
        self.scale_step = float(scale_step)
        self.nms_iou = float(nms_iou)

    def detect(self, image_bgr: np.ndarray, target_height: int | None = None) -> list[Detection]:
        """People in the image; ``target_height`` overrides the detector's resize height for this call."""
        import cv2

        h, w = image_bgr.shape[:2]
        target = target_height or self.target_height
        scale = 1.0 if not target else target / h
        img = image_bgr
        if abs(scale - 1.0) > 1e-3:
            img = cv2.resize(image_bgr, (round(w * scale), round(h * scale)),
                             interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
        rects, weights = self._hog.detectMultiScale(
            img, hitThreshold=self.min_score, winStride=(self.win_stride, self.win_stride), padding=(8, 8),
            scale=self.scale_step)
        if len(rects) == 0:
            return []
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(weights, dtype=np.float64).reshape(-1)
        boxes = np.stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]], 1)
        boxes /= scale
        keep = nms(boxes, scores, self.nms_iou)
        return [Detection(boxes[i], float(scores[i])) for i in keep]
