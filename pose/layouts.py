"""Joint layouts (named joints + bones) and conversions between them, in one place.

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

Conversions (:func:`convert`) are data: for every (source, target) pair a table gives each target joint as a
weighted sum of source joints whose weights add up to 1 (a copy, a mean, an interpolation or an
extrapolation, so the recipe works in any coordinate frame, 2D or 3D), or as missing. A missing target, or a
target whose source joints are NaN / below the visibility threshold, comes out as NaN with ``valid=False``;
nothing is ever filled with zeros. Pairs without a table are composed through intermediate layouts when a
path exists (recipes compose exactly: weights multiply). ``python -m pose.layouts`` prints every table as
Markdown (this is how ``docs/layouts_and_synthetic.md`` is made).

>>> x = np.zeros((33, 3)); x[23] = [0.1, 0.9, 2.0]; x[24] = [-0.1, 0.9, 2.0]   # MediaPipe hips
>>> out, valid = convert(x, "mediapipe33", "kinect_v1")
>>> out[0].tolist(), bool(valid[0])        # HipCenter = mean of the hips
([0.0, 0.9, 2.0], True)
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

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


# ==================================================================================================
# Conversion recipes. A recipe maps a target joint name to ((source joint name, weight), ...) with weights
# summing to 1, or to None (no source: NaN, valid False). `note` says what the recipe means.
# ==================================================================================================

@dataclass(frozen=True)
class Recipe:
    """How one target joint is made from source joints: ``sum(w * source[j])``; ``terms=()`` = missing."""

    terms: tuple[tuple[str, float], ...]
    note: str = ""

    @property
    def kind(self) -> str:
        if not self.terms:
            return "missing"
        if len(self.terms) == 1:
            return "copy"
        ws = [w for _, w in self.terms]
        if any(w < 0 for w in ws):
            return "extrapolated"
        if np.allclose(ws, ws[0]):
            return "mean"
        return "interpolated"


def copy(a: str, note: str = "") -> Recipe:
    return Recipe(((a, 1.0),), note)


def mean(*names: str, note: str = "") -> Recipe:
    return Recipe(tuple((n, 1.0 / len(names)) for n in names), note)


def lerp(a: str, b: str, t: float, note: str = "") -> Recipe:
    """``a + t (b - a)``: between a and b for 0 < t < 1, beyond b for t > 1 (extrapolation)."""
    return Recipe(((a, 1.0 - t), (b, t)), note)


def missing(note: str = "no corresponding source joint") -> Recipe:
    return Recipe((), note)


def _combine(recipes: list[tuple[Recipe, float]], note: str) -> Recipe:
    """Weighted sum of recipes (each itself a weighted sum of source joints)."""
    acc: dict[str, float] = {}
    for r, w in recipes:
        if not r.terms:
            return missing(note)
        for n, v in r.terms:
            acc[n] = acc.get(n, 0.0) + w * v
    return Recipe(tuple((n, v) for n, v in acc.items() if abs(v) > 1e-12), note)


# Geometry constants used by the recipes (fractions along a segment), documented with the tables.
HAND_EXTRAPOLATION = 0.3   # Kinect hand (mid-palm) ~ 0.3 forearm lengths beyond the wrist
V1_SPINE_T = 0.2           # Kinect v1 Spine sits ~1/5 of the way from HipCenter to ShoulderCenter
V2_SPINEMID_T = 0.55       # Kinect v2 SpineMid sits ~0.55 of the way from SpineBase to SpineShoulder
_V1_FROM_V2_T = V1_SPINE_T / V2_SPINEMID_T  # v1 Spine on the SpineBase -> SpineMid segment
_SPINE_NOTE = f"{_V1_FROM_V2_T:.3g} of the way from SpineBase to SpineMid (v1 Spine is lower than v2 SpineMid)"

_MP_SIDE = {"Left": "left", "Right": "right"}


def _mp_to_kinect_v1() -> dict[str, Recipe]:
    r: dict[str, Recipe] = {
        "HipCenter": mean("left_hip", "right_hip", note="mean of the hips"),
        "ShoulderCenter": mean("left_shoulder", "right_shoulder", note="mean of the shoulders"),
        "Head": mean("left_ear", "right_ear", note="mean of the ears (centre of the head)"),
    }
    r["Spine"] = _combine([(r["HipCenter"], 1 - V1_SPINE_T), (r["ShoulderCenter"], V1_SPINE_T)],
                          f"{V1_SPINE_T} of the way from hip centre to shoulder centre")
    for S, s in _MP_SIDE.items():
        for j in ("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"):
            r[j + S] = copy(f"{s}_{j.lower()}")
        r["Hand" + S] = mean(f"{s}_wrist", f"{s}_pinky", f"{s}_index", note="mean of wrist, pinky and index (palm)")
        r["Foot" + S] = lerp(f"{s}_heel", f"{s}_foot_index", 0.75, note="3/4 of the way from heel to toe tip (ball)")
    return r


def _mp_to_casia14() -> dict[str, Recipe]:
    r = {"head": copy("nose", "nose (OpenPose-style head keypoint)"),
         "neck": mean("left_shoulder", "right_shoulder", note="mean of the shoulders")}
    for S, s in (("R", "right"), ("L", "left")):
        for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            r[f"{S}-{j}"] = copy(f"{s}_{j}")
    return r


def _mp_to_body25() -> dict[str, Recipe]:
    r = {"Nose": copy("nose"), "Neck": mean("left_shoulder", "right_shoulder", note="mean of the shoulders"),
         "MidHip": mean("left_hip", "right_hip", note="mean of the hips")}
    for S, s in (("R", "right"), ("L", "left")):
        for j in ("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Eye", "Ear", "Heel"):
            r[S + j] = copy(f"{s}_{j.lower()}")
        r[S + "BigToe"] = copy(f"{s}_foot_index", "foot index = big-toe tip")
        r[S + "SmallToe"] = missing("MediaPipe has no small toe")
    return r


def _openpose_to_casia14() -> dict[str, Recipe]:
    r = {"head": copy("Nose", "nose (OpenPose has no head top)"), "neck": copy("Neck")}
    for S in ("R", "L"):
        for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            r[f"{S}-{j}"] = copy(S + j.capitalize())
    return r


def _kinect_v2_to_v1() -> dict[str, Recipe]:
    r = {n: copy(n) for n in _K1 if n in _K2}
    r["HipCenter"] = copy("SpineBase")
    r["Spine"] = lerp("SpineBase", "SpineMid", _V1_FROM_V2_T, note=_SPINE_NOTE)
    r["ShoulderCenter"] = copy("SpineShoulder", "SpineShoulder (between the shoulders, like v1); "
                                                "v2 Neck is higher")
    return r


def _kinect_to_casia14(head: str, neck: str) -> dict[str, Recipe]:
    r = {"head": copy(head), "neck": copy(neck)}
    for S, side in (("R", "Right"), ("L", "Left")):
        for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            r[f"{S}-{j}"] = copy(j.capitalize() + side)
    return r


def _ucalgary_to_v1() -> dict[str, Recipe]:
    r = {n: copy(n) for n in _K1 if n in _UC}
    r["HipCenter"] = copy("SpineBase")
    r["Spine"] = lerp("SpineBase", "SpineMid", _V1_FROM_V2_T, note=_SPINE_NOTE)
    r["ShoulderCenter"] = mean("ShoulderLeft", "ShoulderRight",
                               note="mean of the shoulders (UCalgary has no SpineShoulder; its Neck is higher)")
    for S in ("Left", "Right"):
        r["Hand" + S] = lerp("Elbow" + S, "Wrist" + S, 1 + HAND_EXTRAPOLATION,
                             note=f"extrapolated: wrist + {HAND_EXTRAPOLATION} x (wrist - elbow)")
    return r


def _ucalgary_to_v2() -> dict[str, Recipe]:
    r = {n: copy(n) for n in _K2 if n in _UC}
    r["SpineShoulder"] = mean("ShoulderLeft", "ShoulderRight", note="mean of the shoulders")
    for S in ("Left", "Right"):
        r["Hand" + S] = lerp("Elbow" + S, "Wrist" + S, 1 + HAND_EXTRAPOLATION,
                             note=f"extrapolated: wrist + {HAND_EXTRAPOLATION} x (wrist - elbow)")
        r["HandTip" + S] = missing("no finger joints in UCalgary")
        r["Thumb" + S] = missing("no finger joints in UCalgary")
    return r


def _to_common(src: tuple[str, ...], hip: str, spine: str) -> dict[str, Recipe]:
    r = {n: copy(n) for n in _CM if n in src}
    r["HipCenter"] = copy(hip)
    r["Spine"] = copy(spine) if spine == "Spine" else lerp(hip, spine, _V1_FROM_V2_T, note=_SPINE_NOTE)
    r["ShoulderCenter"] = mean("ShoulderLeft", "ShoulderRight",
                               note="mean of the shoulders (same recipe from every source)")
    return r


# The tables: (source, target) -> {target joint name: Recipe}. Targets not listed are missing.
RECIPES: dict[tuple[str, str], dict[str, Recipe]] = {
    ("mediapipe33", "kinect_v1"): _mp_to_kinect_v1(),
    ("mediapipe33", "casia14"): _mp_to_casia14(),
    ("mediapipe33", "openpose_body25"): _mp_to_body25(),
    ("openpose_body25", "casia14"): _openpose_to_casia14(),
    ("openpose_coco18", "casia14"): _openpose_to_casia14(),
    ("kinect_v2", "kinect_v1"): _kinect_v2_to_v1(),
    ("kinect_v1", "casia14"): _kinect_to_casia14("Head", "ShoulderCenter"),
    ("kinect_v2", "casia14"): _kinect_to_casia14("Head", "SpineShoulder"),
    ("ucalgary18", "kinect_v1"): _ucalgary_to_v1(),
    ("ucalgary18", "kinect_v2"): _ucalgary_to_v2(),
    ("ucalgary18", "common"): _to_common(_UC, "SpineBase", "SpineMid"),
    ("kinect_v1", "common"): _to_common(_K1, "HipCenter", "Spine"),
    ("kinect_v2", "common"): _to_common(_K2, "SpineBase", "SpineMid"),
    ("mediapipe33", "common"): None,  # filled below by composition through kinect_v1
}


def _compose(a: dict[str, Recipe], b: dict[str, Recipe]) -> dict[str, Recipe]:
    """Recipes src->dst from src->mid (a) and mid->dst (b)."""
    out = {}
    for name, rb in b.items():
        parts = [(a.get(m, missing()), w) for m, w in rb.terms]
        notes = [rb.note] if rb.note else []
        notes += [a[m].note for m, _ in rb.terms if m in a and a[m].note]
        out[name] = _combine(parts, "; ".join(notes)) if rb.terms else rb
    return out


RECIPES[("mediapipe33", "common")] = {
    **_compose(RECIPES[("mediapipe33", "kinect_v1")], RECIPES[("kinect_v1", "common")]),
    "ShoulderCenter": mean("left_shoulder", "right_shoulder", note="mean of the shoulders"),
}


def _route(src: str, dst: str) -> list[str] | None:
    """Shortest chain of layouts src -> ... -> dst through the tables (breadth first)."""
    prev = {src: None}
    queue = [src]
    while queue:
        cur = queue.pop(0)
        if cur == dst:
            path = [cur]
            while prev[path[-1]] is not None:
                path.append(prev[path[-1]])
            return path[::-1]
        for (a, b) in RECIPES:
            if a == cur and b not in prev:
                prev[b] = cur
                queue.append(b)
    return None


def recipes(src: str | Layout, dst: str | Layout) -> dict[str, Recipe]:
    """The per-joint recipe table src -> dst (every target joint present; missing ones as ``missing``).

    Identity, a direct table, or a composition of tables along the shortest chain.
    """
    s, d = get_layout(src), get_layout(dst)
    if s.name == d.name:
        return {n: copy(n) for n in s.joints}
    path = _route(s.name, d.name)
    if path is None:
        pairs = ", ".join(f"{a}->{b}" for a, b in RECIPES)
        raise LayoutError(f"no conversion from {s.name!r} to {d.name!r}; available: {pairs}")
    table = RECIPES[(path[0], path[1])]
    for a, b in zip(path[1:-1], path[2:]):
        table = _compose(table, RECIPES[(a, b)])
    return {n: table.get(n, missing()) for n in d.joints}


def conversion_matrix(src: str | Layout, dst: str | Layout, extrapolate: bool = True) -> np.ndarray:
    """``W (J_dst, J_src)``: ``out[d] = sum_s W[d, s] x[s]``; rows of missing joints are all NaN."""
    s, d = get_layout(src), get_layout(dst)
    return _matrix(s.name, d.name, bool(extrapolate)).copy()


@lru_cache(maxsize=None)
def _matrix(src: str, dst: str, extrapolate: bool) -> np.ndarray:
    s, d = get_layout(src), get_layout(dst)
    W = np.zeros((d.J, s.J))
    table = recipes(s, d)
    for i, name in enumerate(d.joints):
        r = table[name]
        if not r.terms or (not extrapolate and r.kind == "extrapolated"):
            W[i] = np.nan
            continue
        for n, w in r.terms:
            W[i, s.index(n)] += w
    return W


def convert(joints: np.ndarray, src: str | Layout, dst: str | Layout, visibility: np.ndarray | None = None,
            *, min_visibility: float = 0.5, extrapolate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Convert ``joints (..., J_src, C)`` (any C: 3D or 2D) from layout ``src`` to ``dst``.

    Returns ``out (..., J_dst, C)`` float64 and ``valid (..., J_dst)`` bool. A target joint is valid when its
    recipe exists and every source joint it uses is finite (no NaN/inf in any coordinate) and, if
    ``visibility (..., J_src)`` is given, has visibility >= ``min_visibility``. Invalid targets are NaN,
    never zero. ``extrapolate=False`` marks extrapolated joints (e.g. UCalgary hands) missing instead.
    """
    s, d = get_layout(src), get_layout(dst)
    x = np.asarray(joints, dtype=np.float64)
    if x.ndim < 2 or x.shape[-2] != s.J:
        raise LayoutError(f"joints for layout {s.name!r} must have shape (..., {s.J}, C); got {x.shape}")
    usable = np.isfinite(x).all(axis=-1)  # (..., J_src)
    if visibility is not None:
        vis = np.asarray(visibility, dtype=np.float64)
        if vis.shape != x.shape[:-1]:
            raise LayoutError(f"visibility must have shape {x.shape[:-1]}; got {vis.shape}")
        usable &= vis >= min_visibility
    W = _matrix(s.name, d.name, bool(extrapolate))
    has = np.isfinite(W).all(axis=1)  # (J_dst,)
    Wf = np.where(np.isfinite(W), W, 0.0)
    dep = Wf != 0.0  # (J_dst, J_src)
    xs = np.where(usable[..., None], x, 0.0)
    out = np.einsum("ds,...sc->...dc", Wf, xs)
    # a target is valid if it has a recipe and none of its sources is unusable
    bad = (~usable).astype(np.float64) @ dep.T.astype(np.float64)  # (..., J_dst): count of unusable deps
    valid = (bad == 0) & has
    out[~valid] = np.nan
    return out, valid


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


def recipes_markdown() -> str:
    """Every layout and every conversion table, as Markdown (for the docs)."""
    lines = ["## Layouts", ""]
    for lay in LAYOUTS.values():
        lines += [f"### `{lay.name}` ({lay.J} joints, {lay.dims}D, root {lay.root} "
                  f"`{lay.joints[lay.root]}`" + (f", centre = mean of {[lay.joints[i] for i in lay.root_joints]}"
                                                if len(lay.root_joints) > 1 else "") + ")", "",
                  lay.description, "",
                  " ".join(f"{i} {n}," for i, n in enumerate(lay.joints)).rstrip(","), "",
                  "Bones: " + ", ".join(f"{lay.joints[a]}-{lay.joints[b]}" for a, b in lay.bones), ""]
    lines += ["## Conversions", "",
              "Each target joint is a weighted sum of source joints (weights add up to 1). "
              "`missing` joints are NaN with `valid=False`.", ""]
    pairs = list(RECIPES)
    for a, b in pairs:
        lines += [f"### `{a}` -> `{b}`", "", "| # | target joint | kind | recipe | note |", "|---|---|---|---|---|"]
        table = recipes(a, b)
        for i, name in enumerate(get_layout(b).joints):
            r = table[name]
            expr = " + ".join(f"{w:.4g}·{n}" if w != 1 else n for n, w in r.terms) or "—"
            lines.append(f"| {i} | {name} | {r.kind} | {expr} | {r.note} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(recipes_markdown())
