"""Joint layouts: named joints + bones of every skeleton format, in one place.

A :class:`Layout` names the joints of one skeleton format in file order, lists its bones (for drawing and
bone lengths) and names the root joint used for centring. ``LAYOUTS`` holds every format the project reads
or writes:

==================  ==  ==============================================================================
name                J   what
==================  ==  ==============================================================================
``kinect_v1``       20  Kinect SDK v1 order (BIWI, IAS-Lab, KGBD; CAGE_SPEC §1.3)
``kinect_v2``       25  Kinect SDK v2 order (KS20)
``casia14``         14  Chen & Ramanan "2D + matching" lifted skeleton used for CASIA-B (CAGE_SPEC §7.1)
``mediapipe33``     33  MediaPipe Pose landmarks, official order
``ucalgary18``      18  UCalgary gait CSV order (Kinect v2 joints, re-ordered; no hands, no SpineShoulder)
``openpose_body25`` 25  OpenPose BODY_25 keypoints (2D)
``openpose_coco18`` 18  OpenPose COCO-18 keypoints (2D)
``common``          18  the joints Kinect v1, Kinect v2 and UCalgary all share (``kinect_v1`` minus hands)
==================  ==  ==============================================================================

Conversions between layouts live in :mod:`pose.convert`.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from pose.errors import PoseError


class LayoutError(PoseError):
    """An unknown layout name, or a conversion that no recipe can produce."""


@dataclass(frozen=True)
class Layout:
    """One skeleton format. ``joints`` in file order; ``bones`` index pairs (parent, child) into ``joints``.

    ``root`` is the hip-centre joint used for centring. Layouts without a hip-centre joint (``casia14``,
    ``mediapipe33``, ``openpose_coco18``) set ``root`` to their left/right hip and list both hips in
    ``root_joints``: centre on the mean of ``root_joints`` (``cages.windows.centre(w, layout.root_joints)``).
    ``dims`` is 3 for 3D formats, 2 for the OpenPose image formats.
    """

    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    root: int
    root_joints: tuple[int, ...] = ()
    dims: int = 3
    description: str = ""

    def __post_init__(self):
        if not self.root_joints:
            object.__setattr__(self, "root_joints", (self.root,))

    @property
    def J(self) -> int:
        return len(self.joints)

    def index(self, name: str) -> int:
        """Index of joint ``name`` (exact name as in ``joints``)."""
        try:
            return self.joints.index(name)
        except ValueError:
            raise LayoutError(f"layout {self.name!r} has no joint {name!r}; joints: {', '.join(self.joints)}") from None

    @property
    def enum(self) -> type[IntEnum]:
        """The joints as an ``IntEnum`` (``get_layout('kinect_v1').enum.HipLeft == 12``)."""
        return IntEnum(self.name, {n: i for i, n in enumerate(self.joints)})

    @property
    def mirror(self) -> tuple[int, ...]:
        """Permutation that swaps left and right joints (for mirroring augmentation); ``joints[mirror[i]]``
        is the other-side twin of ``joints[i]`` (itself for centre joints)."""
        idx = {n: i for i, n in enumerate(self.joints)}
        out = []
        for n in self.joints:
            twin = n
            for a, b in (("Left", "Right"), ("left", "right"), ("L-", "R-"), ("L", "R")):
                if a in n and (a != "L" or n.startswith("L")):
                    twin = n.replace(a, b, 1)
                    break
                if b in n and (b != "R" or n.startswith("R")):
                    twin = n.replace(b, a, 1)
                    break
            out.append(idx.get(twin, idx[n]))
        return tuple(out)


def _bones(joints: tuple[str, ...], pairs: list[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    idx = {n: i for i, n in enumerate(joints)}
    return tuple((idx[a], idx[b]) for a, b in pairs)


def _limbs(parent: str, names: list[str]) -> list[tuple[str, str]]:
    chain = [parent] + names
    return list(zip(chain[:-1], chain[1:]))


# --- Kinect SDK v1 (BIWI, IAS-Lab, KGBD) -------------------------------------------------------------
_K1 = ("HipCenter", "Spine", "ShoulderCenter", "Head",
       "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
       "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
       "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
       "HipRight", "KneeRight", "AnkleRight", "FootRight")
KINECT_V1 = Layout(
    "kinect_v1", _K1,
    _bones(_K1, _limbs("HipCenter", ["Spine", "ShoulderCenter", "Head"])
           + _limbs("ShoulderCenter", ["ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft"])
           + _limbs("ShoulderCenter", ["ShoulderRight", "ElbowRight", "WristRight", "HandRight"])
           + _limbs("HipCenter", ["HipLeft", "KneeLeft", "AnkleLeft", "FootLeft"])
           + _limbs("HipCenter", ["HipRight", "KneeRight", "AnkleRight", "FootRight"])),
    root=0, description="Kinect SDK v1, 20 joints (BIWI, IAS-Lab, KGBD); metres, camera space")

# --- Kinect SDK v2 (KS20) ----------------------------------------------------------------------------
_K2 = ("SpineBase", "SpineMid", "Neck", "Head",
       "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
       "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
       "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
       "HipRight", "KneeRight", "AnkleRight", "FootRight",
       "SpineShoulder", "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight")
KINECT_V2 = Layout(
    "kinect_v2", _K2,
    _bones(_K2, _limbs("SpineBase", ["SpineMid", "SpineShoulder", "Neck", "Head"])
           + _limbs("SpineShoulder", ["ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft", "HandTipLeft"])
           + [("WristLeft", "ThumbLeft")]
           + _limbs("SpineShoulder", ["ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HandTipRight"])
           + [("WristRight", "ThumbRight")]
           + _limbs("SpineBase", ["HipLeft", "KneeLeft", "AnkleLeft", "FootLeft"])
           + _limbs("SpineBase", ["HipRight", "KneeRight", "AnkleRight", "FootRight"])),
    root=0, description="Kinect SDK v2, 25 joints (KS20); metres, camera space")

# --- CASIA-B lifted 14-joint skeleton --------------------------------------------------------------
_C14 = ("head", "neck", "R-shoulder", "R-elbow", "R-wrist", "L-shoulder", "L-elbow", "L-wrist",
        "R-hip", "R-knee", "R-ankle", "L-hip", "L-knee", "L-ankle")
CASIA14 = Layout(
    "casia14", _C14,
    _bones(_C14, [("neck", "head")]
           + _limbs("neck", ["R-shoulder", "R-elbow", "R-wrist"])
           + _limbs("neck", ["L-shoulder", "L-elbow", "L-wrist"])
           + _limbs("neck", ["R-hip", "R-knee", "R-ankle"])
           + _limbs("neck", ["L-hip", "L-knee", "L-ankle"])),
    root=8, root_joints=(8, 11),
    description="CASIA-B 14 joints (OpenPose 2D lifted by 2D+matching): x, y image pixels, z rescaled depth")

# --- MediaPipe Pose (33 landmarks) -------------------------------------------------------------------
_MP = ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
       "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
       "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
       "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
       "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
       "left_heel", "right_heel", "left_foot_index", "right_foot_index")
# MediaPipe's POSE_CONNECTIONS (drawing edges; the hands and feet form small loops).
_MP_EDGES = ((0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12), (11, 13),
             (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18), (16, 20),
             (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
             (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32))
MEDIAPIPE33 = Layout("mediapipe33", _MP, _MP_EDGES, root=23, root_joints=(23, 24),
                     description="MediaPipe Pose, 33 landmarks (world landmarks: metres, hip-centred)")

# --- UCalgary gait CSV (18 Kinect v2 joints, own order) --------------------------------------------
_UC = ("FootLeft", "AnkleLeft", "KneeLeft", "HipLeft", "FootRight", "AnkleRight", "KneeRight", "HipRight",
       "SpineBase", "SpineMid", "Neck", "Head", "ShoulderLeft", "ShoulderRight", "WristLeft", "WristRight",
       "ElbowLeft", "ElbowRight")
UCALGARY18 = Layout(
    "ucalgary18", _UC,
    _bones(_UC, _limbs("SpineBase", ["SpineMid", "Neck", "Head"])
           + _limbs("Neck", ["ShoulderLeft", "ElbowLeft", "WristLeft"])
           + _limbs("Neck", ["ShoulderRight", "ElbowRight", "WristRight"])
           + _limbs("SpineBase", ["HipLeft", "KneeLeft", "AnkleLeft", "FootLeft"])
           + _limbs("SpineBase", ["HipRight", "KneeRight", "AnkleRight", "FootRight"])),
    root=8, description="UCalgary gait dataset CSV order: 18 Kinect v2 joints, metres, camera space")

# --- OpenPose ---------------------------------------------------------------------------------------
_B25 = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
        "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
        "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")
OPENPOSE_BODY25 = Layout(
    "openpose_body25", _B25,
    ((1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12), (12, 13),
     (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19), (19, 20), (14, 21), (11, 22),
     (22, 23), (11, 24)),
    root=8, dims=2, description="OpenPose BODY_25 keypoints, image pixels")
_C18 = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
        "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar")
OPENPOSE_COCO18 = Layout(
    "openpose_coco18", _C18,
    ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
     (1, 0), (0, 14), (14, 16), (0, 15), (15, 17)),
    root=8, root_joints=(8, 11), dims=2, description="OpenPose COCO-18 keypoints, image pixels")

# --- the subset Kinect v1, Kinect v2 and UCalgary share -------------------------------------------
_CM = ("HipCenter", "Spine", "ShoulderCenter", "Head",
       "ShoulderLeft", "ElbowLeft", "WristLeft", "ShoulderRight", "ElbowRight", "WristRight",
       "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight")
COMMON = Layout(
    "common", _CM,
    _bones(_CM, _limbs("HipCenter", ["Spine", "ShoulderCenter", "Head"])
           + _limbs("ShoulderCenter", ["ShoulderLeft", "ElbowLeft", "WristLeft"])
           + _limbs("ShoulderCenter", ["ShoulderRight", "ElbowRight", "WristRight"])
           + _limbs("HipCenter", ["HipLeft", "KneeLeft", "AnkleLeft", "FootLeft"])
           + _limbs("HipCenter", ["HipRight", "KneeRight", "AnkleRight", "FootRight"])),
    root=0, description="joints shared by kinect_v1, kinect_v2 and ucalgary18 (kinect_v1 without hands); "
                        "ShoulderCenter is always the mean of the shoulders")

LAYOUTS: dict[str, Layout] = {l.name: l for l in (KINECT_V1, KINECT_V2, CASIA14, MEDIAPIPE33, UCALGARY18,
                                                 OPENPOSE_BODY25, OPENPOSE_COCO18, COMMON)}


def get_layout(name: str | Layout) -> Layout:
    """The layout called ``name`` (a ``Layout`` is returned as is)."""
    if isinstance(name, Layout):
        return name
    try:
        return LAYOUTS[name]
    except (KeyError, TypeError):
        raise LayoutError(f"unknown joint layout {name!r}; valid layouts: {', '.join(LAYOUTS)}") from None


# Geometry constants of the Kinect layouts (fractions along a segment), used by `pose.convert` and `pose.synthetic`.
HAND_EXTRAPOLATION = 0.3   # Kinect hand (mid-palm) ~ 0.3 forearm lengths beyond the wrist
V1_SPINE_T = 0.2           # Kinect v1 Spine sits ~1/5 of the way from HipCenter to ShoulderCenter
V2_SPINEMID_T = 0.55       # Kinect v2 SpineMid sits ~0.55 of the way from SpineBase to SpineShoulder


def bone_lengths(joints: np.ndarray, layout: str | Layout) -> np.ndarray:
    """Length of every bone of ``layout``: ``joints (..., J, C)`` -> ``(..., n_bones)``, order of ``layout.bones``.

    NaN where either end is NaN.
    """
    lay = get_layout(layout)
    x = np.asarray(joints, dtype=np.float64)
    if x.shape[-2] != lay.J:
        raise LayoutError(f"joints for layout {lay.name!r} must have shape (..., {lay.J}, C); got {x.shape}")
    a = np.array([i for i, _ in lay.bones])
    b = np.array([j for _, j in lay.bones])
    return np.linalg.norm(x[..., b, :] - x[..., a, :], axis=-1)


def root_position(joints: np.ndarray, layout: str | Layout) -> np.ndarray:
    """The hip centre of ``joints (..., J, C)``: mean of ``layout.root_joints`` -> ``(..., C)``."""
    lay = get_layout(layout)
    return np.asarray(joints, dtype=np.float64)[..., list(lay.root_joints), :].mean(axis=-2)
