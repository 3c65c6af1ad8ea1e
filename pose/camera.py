"""Pinhole camera arithmetic shared by the synthetic walker, the 2D→3D lifters and their evaluation.

Camera frame: z forward (metres). A joint's *relative depth in pixel units* is ``focal · (z − z_root) / z_root``:
its depth offset from the root joint, scaled like the image at the root's distance (weak perspective). It is
what lifted CASIA-B skeletons carry as their third coordinate.
"""
from __future__ import annotations

import numpy as np


def project(cam, focal: float) -> np.ndarray:
    """Pinhole projection of camera-frame points ``(..., 3)`` to pixels ``(..., 2)`` (principal point at 0)."""
    cam = np.asarray(cam, dtype=np.float64)
    return focal * cam[..., :2] / cam[..., 2:3]


def relative_depth_px(z, z_root, focal: float) -> np.ndarray:
    """``focal · (z − z_root) / z_root``: depth relative to the root in pixel units (``z_root`` broadcasts)."""
    z = np.asarray(z, dtype=np.float64)
    z_root = np.asarray(z_root, dtype=np.float64)
    return focal * (z - z_root) / z_root
