"""Synthetic 3D walkers: a parametric gait generator for tests, demos and synthetic datasets.

An *identity* (:class:`WalkerIdentity`) is a stable set of parameters: height, per-person body proportions
(segment lengths), cadence, stride, arm swing, posture (torso lean, head pitch, arm carriage), left/right
asymmetries and phase offsets. A *walk* (:func:`walk`) drives a forward-kinematics skeleton with gait-phase
joint angles (hip/knee/ankle flexion, shoulder/elbow swing, pelvis sway and rotation, torso
counter-rotation; the pelvis bob follows from keeping the lowest foot point on the floor) along a straight
path, adds per-walk variation (speed, stride, arm swing, posture - never
bone lengths), places it in a Kinect-like camera frame, adds sensor noise and optionally drops joints or
frames. The rich internal skeleton (~50 points) is computed once per walk and mapped to any 3D layout of
``pose.layouts`` (``kinect_v1``, ``kinect_v2``, ``casia14``, ``mediapipe33``, ``ucalgary18``, ``common``).

Coordinates (every layout): metres, Kinect camera space - right-handed, y up (y = 0 at camera height; the
floor is at ``-camera_height``), z away from the camera (the default walk stays roughly 2-5 m away), x towards
the sensor's left, i.e. image-left in the camera's own (unmirrored) image. As in real Kinect recordings
(checked on UCalgary), a person facing the camera has their left side at -x. For CASIA-B-like data, :class:`VirtualCamera` and :func:`project_to_image` turn
camera-frame joints into image pixels x, y plus a depth rescaled to pixel units, as the lifted CASIA-B
files have.

Knobs of :func:`walk` (defaults in brackets) - see ``docs/layouts_and_synthetic.md`` for a table:

* ``fps`` [30.0]: frame rate; the gait is continuous in time, so any rate works.
* ``variation`` [1.0]: scale of the per-walk changes (0 = every walk of an identity has the same style;
  the phase, heading and start still change). At 1.0: speed +-5%, stride +-4%, arm swing +-15%, torso lean
  +-1.5 deg, head pitch +-3 deg, elbow flexion +-4 deg, arm abduction +-2 deg, step width +-1 cm (1 sd).
* ``heading_deg`` [None = random in ``heading_range``]: walking direction seen from the camera, degrees:
  0 = left to right across the image (towards -x), 90 = straight away from the camera (+z), -90 = towards
  it, 180 = right to left. Direction vector ``(-cos h, 0, sin h)``.
* ``heading_range`` [(-110, -70)]: where a random heading is drawn from (towards the camera +-20 deg).
* ``start`` [None]: (x, z) of the pelvis at frame 0; default: the path is centred on (0, 3.5) +- 0.3 m.
* ``noise_m`` [0.016]: sd of the Gaussian sensor noise per joint coordinate, metres.
* ``noise_corr`` [0.95]: frame-to-frame correlation of that noise (AR(1); 0 = white). With the defaults the
  bone-length jitter within a walk and the frame-to-frame jitter match real Kinect v2 (UCalgary) data.
* ``drop_joint_p`` [0]: probability that a joint of a frame is dropped (NaN, ``valid`` False).
* ``drop_frame_p`` [0]: probability that a whole frame is dropped (all NaN, ``frame_ok`` False).
* ``camera_height`` [1.0]: sensor height above the floor, metres.
* ``limp`` [None]: ``(side, severity)``, side +1 = right leg, -1 = left, severity in [0, 1]: an abnormal
  gait on that leg (its hip excursion shrinks by up to 30 %, its knee flexes up to 60 % less, the stance
  timing shifts by up to 0.45 rad, the walk slows by up to 35 % and sways more), like UCalgary's runs 3-6.

Separability at the defaults (tests/pose/test_synthetic.py): 20 identities, f = 6 windows centred on
joint 0, gallery walk 0, probe walk 1, 120-frame walks: raw-coordinate 1-NN Rank-1 0.29-0.40 over seeds
0-3 (chance 0.05). What keeps it from 100%: per-walk heading (+-20 deg), speed/stride/posture changes and
smooth sensor noise. Fixed heading -90: 0.53 / 0.65 (seeds 0 / 1); heading +-45 deg: 0.13 / 0.14;
``variation=0``: 0.44 / 0.39; ``noise_m=0``: 0.45 / 0.35.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from pose.layouts import V1_SPINE_T, V2_SPINEMID_T, LayoutError, get_layout
from pose.camera import relative_depth_px
from pose.errors import PoseError


class SyntheticError(PoseError):
    """Bad arguments for the synthetic walker (unknown or 2D layout, negative sizes, bad probabilities)."""


# --------------------------------------------------------------------------------------------------
# Identities
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WalkerIdentity:
    """Stable parameters of one synthetic person. Lengths in metres, angles in degrees, cadence in gait
    cycles per second (one cycle = two steps), stride = distance covered per cycle."""

    pid: int
    seed: int  # the dataset seed it was drawn with (with pid, it seeds the walks)
    height: float
    # segment lengths (height x per-person proportion)
    thigh: float
    shank: float
    foot: float
    ankle_height: float
    hip_width: float  # distance between hip joint centres
    torso: float  # pelvis centre to shoulder centre
    neck: float  # shoulder centre to neck joint
    head: float  # neck joint to head centre
    shoulder_width: float
    upper_arm: float
    forearm: float
    hand: float
    # gait style
    cadence_hz: float
    stride: float
    hip_flex_mean_deg: float
    knee_peak_deg: float
    arm_swing_deg: float
    arm_mean_deg: float
    arm_abduction_deg: float
    elbow_deg: float
    torso_lean_deg: float
    head_pitch_deg: float
    sway_m: float
    pelvis_rot_deg: float
    step_width: float
    toe_out_deg: float
    # asymmetries and phase offsets
    asym_stride: float  # relative difference of left vs right hip excursion
    asym_arm: float  # relative difference of left vs right arm swing
    asym_phase: float  # left leg phase = right leg phase + pi + asym_phase (rad)
    arm_phase: float  # arm swing lag behind the opposite leg (rad)
    shoulder_tilt_m: float  # right shoulder higher by this much (left lower by the same)

    def as_dict(self) -> dict:
        return asdict(self)


# Segment lengths as fractions of height, calibrated so that the Kinect-style joints have the bone lengths
# of real Kinect v2 skeletons (UCalgary Run1-2, 13 people: thigh 0.38, shank 0.36, upper arm 0.26, forearm
# 0.23, shoulder half-width 0.16, hip half-width 0.08, shoulder centre-head 0.25 m; docs/layouts_and_synthetic.md).
# Kinect joints are not anatomical landmarks, so these differ from anthropometric tables. The proportion
# of each segment is drawn per person (sd 4%).
_PROPORTIONS = {
    "thigh": 0.225, "shank": 0.21, "foot": 0.125, "ankle_height": 0.039, "hip_width": 0.093,
    "torso": 0.275, "neck": 0.055, "head": 0.085, "shoulder_width": 0.185, "upper_arm": 0.155,
    "forearm": 0.136, "hand": 0.1,
}
_PROPORTION_SD = 0.04
_STYLE = {  # name: (mean, sd, low, high)
    "cadence_hz": (0.87, 0.06, 0.7, 1.1),  # slow indoor walking in front of a sensor (UCalgary ~0.8 m/s)
    "stride_per_height": (0.62, 0.06, 0.45, 0.85),
    "hip_flex_mean_deg": (8.0, 3.0, 0.0, 16.0),
    "knee_peak_deg": (60.0, 5.0, 45.0, 72.0),
    "arm_swing_deg": (18.0, 6.0, 4.0, 35.0),
    "arm_mean_deg": (2.0, 4.0, -8.0, 12.0),
    "arm_abduction_deg": (8.0, 3.0, 2.0, 18.0),
    "elbow_deg": (18.0, 7.0, 3.0, 40.0),
    "torso_lean_deg": (4.0, 3.0, -4.0, 12.0),
    "head_pitch_deg": (3.0, 5.0, -10.0, 18.0),
    "sway_m": (0.025, 0.008, 0.005, 0.045),
    "pelvis_rot_deg": (5.0, 2.0, 1.0, 10.0),
    "step_width": (0.10, 0.025, 0.04, 0.18),
    "toe_out_deg": (7.0, 4.0, -3.0, 18.0),
    "asym_stride": (0.0, 0.06, -0.15, 0.15),
    "asym_arm": (0.0, 0.15, -0.4, 0.4),
    "asym_phase": (0.0, 0.06, -0.15, 0.15),
    "arm_phase": (0.0, 0.2, -0.5, 0.5),
    "shoulder_tilt_m": (0.0, 0.008, -0.02, 0.02),
}


def make_identity(pid: int, seed: int = 0) -> WalkerIdentity:
    """Identity ``pid`` of the population drawn with ``seed`` (deterministic; independent of other pids)."""
    if pid < 0 or seed < 0:
        raise SyntheticError(f"pid and seed must be >= 0 (got pid={pid}, seed={seed})")
    rng = np.random.default_rng([int(seed), int(pid), 0x5EED])
    height = float(np.clip(rng.normal(1.72, 0.09), 1.50, 1.98))
    p = {k: height * v * float(np.clip(1 + rng.normal(0, _PROPORTION_SD), 0.88, 1.12))
         for k, v in _PROPORTIONS.items()}
    s = {k: float(np.clip(rng.normal(m, sd), lo, hi)) for k, (m, sd, lo, hi) in _STYLE.items()}
    stride = s.pop("stride_per_height") * height
    return WalkerIdentity(pid=int(pid), seed=int(seed), height=height, stride=stride, **p, **s)


def make_identities(n: int, seed: int = 0) -> list[WalkerIdentity]:
    """``n`` identities; identity ``k`` is the same whatever ``n`` (it depends on ``(seed, k)`` only)."""
    if n < 0:
        raise SyntheticError(f"number of identities must be >= 0 (got {n})")
    return [make_identity(k, seed) for k in range(n)]


# --------------------------------------------------------------------------------------------------
# Internal skeleton -> layouts
# --------------------------------------------------------------------------------------------------

#: Which internal point each joint of each 3D layout is. Internal points are chosen so that the layout
#: converters of `pose.convert` agree with them (e.g. hand = mean of wrist, pinky and index knuckles;
#: Kinect foot = 3/4 from heel to toe tip; head centre = mean of the ears; hip centre = mean of the hips).
_K1_MAP = {
    "HipCenter": "pelvis", "Spine": "spine_v1", "ShoulderCenter": "shoulder_centre", "Head": "head",
    **{f"{j}{S}": f"{j.lower()}_{s}" for S, s in (("Left", "l"), ("Right", "r"))
       for j in ("Shoulder", "Elbow", "Wrist", "Hand", "Hip", "Knee", "Ankle", "Foot")},
}
_K2_MAP = {
    **{k: v for k, v in _K1_MAP.items() if k not in ("HipCenter", "Spine", "ShoulderCenter")},
    "SpineBase": "pelvis", "SpineMid": "spine_mid", "Neck": "neck", "SpineShoulder": "shoulder_centre",
    "HandTipLeft": "hand_tip_l", "ThumbLeft": "thumb_tip_l", "HandTipRight": "hand_tip_r", "ThumbRight": "thumb_tip_r",
}
_C14_MAP = {"head": "nose", "neck": "shoulder_centre",
            **{f"{S}-{j}": f"{j}_{s}" for S, s in (("R", "r"), ("L", "l"))
               for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")}}
_MP_MAP = {"nose": "nose", "mouth_left": "mouth_l", "mouth_right": "mouth_r",
           **{f"{side}_{j}": f"{j}_{side[0]}" for side in ("left", "right")
              for j in ("eye_inner", "eye", "eye_outer", "ear", "shoulder", "elbow", "wrist", "pinky", "index",
                        "thumb", "hip", "knee", "ankle", "heel", "foot_index")}}
_COMMON_MAP = {k: v for k, v in _K1_MAP.items() if not k.startswith("Hand")}
_COMMON_MAP["Spine"] = "spine_v1"
_LAYOUT_MAPS = {"kinect_v1": _K1_MAP, "kinect_v2": _K2_MAP, "casia14": _C14_MAP, "mediapipe33": _MP_MAP,
                "ucalgary18": _K2_MAP, "common": _COMMON_MAP}


def synthetic_layouts() -> tuple[str, ...]:
    """Names of the layouts :func:`walk` can produce (every 3D layout of ``pose.layouts.LAYOUTS``)."""
    return tuple(_LAYOUT_MAPS)


def _layout_index(layout: str, names: list[str]) -> np.ndarray:
    try:
        lay = get_layout(layout)
    except LayoutError as exc:
        raise SyntheticError(str(exc)) from None
    if lay.name not in _LAYOUT_MAPS:
        raise SyntheticError(f"the synthetic walker produces 3D layouts only ({', '.join(_LAYOUT_MAPS)}); "
                             f"got {lay.name!r} - render 2D keypoints with project_to_image")
    m = _LAYOUT_MAPS[lay.name]
    pos = {n: i for i, n in enumerate(names)}
    return np.array([pos[m[j]] for j in lay.joints])


def _rot_y(v: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v (T, 3)`` about the vertical by ``ang (T,)`` rad: forward (z) turns towards +x."""
    c, s = np.cos(ang), np.sin(ang)
    return np.stack([c * v[:, 0] + s * v[:, 2], v[:, 1], -s * v[:, 0] + c * v[:, 2]], axis=-1)


def _dir(a: np.ndarray, lateral: np.ndarray | float = 0.0) -> np.ndarray:
    """Unit vectors at angle ``a`` from straight down, rotated forward (sagittal), with a lateral tilt."""
    a = np.asarray(a, dtype=np.float64)
    lat = np.broadcast_to(np.asarray(lateral, dtype=np.float64), a.shape)
    v = np.stack([np.sin(lat), -np.cos(lat) * np.cos(a), np.cos(lat) * np.sin(a)], axis=-1)
    return v


def _bump(phi: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Periodic Gaussian bump in gait phase (rad)."""
    d = np.angle(np.exp(1j * (phi - centre)))
    return np.exp(-0.5 * (d / width) ** 2)


def _skeleton(ident: WalkerIdentity, style: dict, phase: np.ndarray) -> dict[str, np.ndarray]:
    """Internal points in the body frame (x right, y up from the floor, z forward), each ``(T, 3)``.

    ``phase`` is the right leg's gait phase (rad, 0 = right heel strike). Pelvis progression along z is
    added by the caller.
    """
    T = len(phase)
    rad = np.deg2rad
    pts: dict[str, np.ndarray] = {}
    leg = ident.thigh + ident.shank + ident.ankle_height
    # hip excursion that makes the feet cover the stride: step = 2 L sin(amp)
    amp = np.arcsin(np.clip(style["stride"] / (4.0 * leg), 0.05, 0.7))
    limp = style.get("limp")  # None, or (side sign: +1 right / -1 left, severity 0..1): the abnormal leg
    asym_phase, asym_stride = ident.asym_phase, ident.asym_stride
    if limp is not None:  # a shorter, quicker step onto the sore leg: its stance and excursion shrink
        asym_phase += limp[0] * 0.45 * limp[1]
        asym_stride += limp[0] * -0.6 * limp[1]
    phases = {"r": phase, "l": phase + np.pi + asym_phase}
    # pelvis: lateral sway over the stance leg; its vertical bob comes from grounding the feet (below)
    pelvis_y = np.full(T, leg)
    sway = style["sway_m"] * np.sin(phase - 0.33)  # over the right leg at its mid-stance (phase ~1.9)
    pelvis = np.stack([sway, pelvis_y, np.zeros(T)], axis=-1)
    pelvis_yaw = -rad(style["pelvis_rot_deg"]) * np.cos(phase)  # right hip forward at right heel strike
    pts["pelvis"] = pelvis
    for s, sign in (("r", 1.0), ("l", -1.0)):
        phi = phases[s]
        hip = pelvis + _rot_y(np.tile([sign * ident.hip_width / 2, 0.0, 0.0], (T, 1)), pelvis_yaw)
        a_s = amp * (1 + sign * asym_stride / 2)
        stiff = 1.0 if limp is None or limp[0] != sign else 1.0 - 0.6 * limp[1]  # a stiff knee on the sore leg
        # flexion peaks just before heel strike, extension at ~50% of the cycle
        hip_flex = rad(style["hip_flex_mean_deg"]) + a_s * np.cos(phi + 0.35)
        knee_flex = rad(5.0 + 12.0 * _bump(phi, 0.9, 0.45) + stiff * (ident.knee_peak_deg - 5.0) * _bump(phi, 4.3, 0.65))
        ankle_pf = rad(-8.0 * _bump(phi, 2.6, 0.7) + 16.0 * _bump(phi, 3.9, 0.35) - 4.0 * _bump(phi, 5.2, 0.6))
        # the leg converges from hip width to step width as it goes down
        half_step = style["step_width"] / 2
        lat_thigh = np.arctan2(sign * (half_step - ident.hip_width / 2) * 0.5, ident.thigh)
        lat_shank = np.arctan2(sign * (half_step - ident.hip_width / 2) * 0.5, ident.shank)
        knee = hip + ident.thigh * _dir(hip_flex, lat_thigh)
        shank_a = hip_flex - knee_flex
        ankle = knee + ident.shank * _dir(shank_a, lat_shank)
        foot_a = shank_a + np.pi / 2 - ankle_pf
        fwd, down = _dir(foot_a), _dir(foot_a - np.pi / 2)
        toe_out = rad(sign * ident.toe_out_deg)
        fwd, down = _rot_y(fwd, np.full(T, toe_out)), _rot_y(down, np.full(T, toe_out))
        out = _rot_y(np.tile([sign, 0.0, 0.0], (T, 1)), np.full(T, toe_out))
        base = ankle + ident.ankle_height * down
        heel = base - 0.25 * ident.foot * fwd
        toe = base + 0.75 * ident.foot * fwd
        pts[f"hip_{s}"], pts[f"knee_{s}"], pts[f"ankle_{s}"] = hip, knee, ankle
        pts[f"heel_{s}"], pts[f"foot_index_{s}"] = heel, toe
        pts[f"small_toe_{s}"] = base + 0.5 * ident.foot * fwd + 0.04 * out
        pts[f"foot_{s}"] = 0.25 * heel + 0.75 * toe  # Kinect foot (same recipe as pose.convert)
    # torso: leaning forward, counter-rotating against the pelvis
    torso_yaw = -0.6 * pelvis_yaw
    lean = rad(style["torso_lean_deg"]) + rad(1.5) * np.cos(2 * phase)
    up = _rot_y(_dir(np.pi - lean), torso_yaw)  # unit vector along the spine, upwards, leaning forward
    sc = pelvis + ident.torso * up
    pts["shoulder_centre"] = sc
    pts["spine_v1"] = pelvis + V1_SPINE_T * ident.torso * up
    pts["spine_mid"] = pelvis + V2_SPINEMID_T * ident.torso * up
    head_pitch = lean + rad(style["head_pitch_deg"])
    head_up = _rot_y(_dir(np.pi - 0.5 * head_pitch), torso_yaw)
    neck = sc + ident.neck * head_up
    head = neck + ident.head * head_up
    pts["neck"], pts["head"] = neck, head
    h_fwd = _rot_y(_dir(np.pi / 2 - head_pitch), torso_yaw)  # face direction (pitched down by head_pitch)
    h_up = np.cross(h_fwd, _rot_y(np.tile([1.0, 0.0, 0.0], (T, 1)), torso_yaw))
    h_right = np.cross(h_up, h_fwd)
    H = ident.height

    def face(f, u, r):
        return head + H * (f * h_fwd + u * h_up + r * h_right)

    pts["nose"] = face(0.055, -0.012, 0.0)
    for s, sg in (("r", 1.0), ("l", -1.0)):
        pts[f"eye_{s}"] = face(0.046, 0.010, sg * 0.018)
        pts[f"eye_inner_{s}"] = face(0.048, 0.010, sg * 0.009)
        pts[f"eye_outer_{s}"] = face(0.043, 0.010, sg * 0.027)
        pts[f"ear_{s}"] = face(0.0, 0.0, sg * 0.043)  # head centre = mean of the ears
        pts[f"mouth_{s}"] = face(0.048, -0.035, sg * 0.014)
    # arms: swing opposite to the same-side leg
    right_vec = _rot_y(np.tile([1.0, 0.0, 0.0], (T, 1)), torso_yaw)
    for s, sign in (("r", 1.0), ("l", -1.0)):
        opposite = phases["l" if s == "r" else "r"]
        sw = rad(style["arm_swing_deg"]) * (1 + sign * ident.asym_arm / 2)
        flex = rad(style["arm_mean_deg"]) + sw * np.cos(opposite - ident.arm_phase)
        shoulder = sc + sign * ident.shoulder_width / 2 * right_vec + np.array([0, sign * ident.shoulder_tilt_m, 0])
        abd = rad(style["arm_abduction_deg"])
        ua = _rot_y(_dir(flex, sign * abd), torso_yaw)
        elbow = shoulder + ident.upper_arm * ua
        elbow_flex = rad(style["elbow_deg"]) + 0.4 * np.clip(flex - rad(style["arm_mean_deg"]), 0, None)
        fa = _rot_y(_dir(flex + elbow_flex, sign * abd * 0.5), torso_yaw)
        wrist = elbow + ident.forearm * fa
        hd = _rot_y(_dir(flex + elbow_flex + rad(5.0), sign * abd * 0.3), torso_yaw)
        # palm faces the thigh: index knuckle forward of the pinky knuckle
        hfwd = np.cross(hd, right_vec)  # forward, across the hand
        hfwd /= np.linalg.norm(hfwd, axis=-1, keepdims=True)
        hside = np.cross(hfwd, hd)  # (hd, hfwd, hside) is an orthonormal hand frame; hside points right
        L = ident.hand
        pinky = wrist + 0.45 * L * hd - 0.25 * L * hfwd
        index = wrist + 0.45 * L * hd + 0.25 * L * hfwd
        pts[f"shoulder_{s}"], pts[f"elbow_{s}"], pts[f"wrist_{s}"] = shoulder, elbow, wrist
        pts[f"pinky_{s}"], pts[f"index_{s}"] = pinky, index
        pts[f"thumb_{s}"] = wrist + 0.35 * L * hd + 0.3 * L * hfwd - sign * 0.08 * L * hside
        pts[f"thumb_tip_{s}"] = wrist + 0.55 * L * hd + 0.4 * L * hfwd - sign * 0.1 * L * hside
        pts[f"hand_{s}"] = (wrist + pinky + index) / 3.0  # Kinect hand (same recipe as pose.convert)
        pts[f"hand_tip_{s}"] = wrist + L * hd
    # ground contact: the lowest foot point of each frame touches the floor (y = 0); this lifts and lowers
    # the whole body twice per gait cycle (the pelvis bob)
    feet = np.stack([pts[f"{k}_{s}"][:, 1] for k in ("heel", "foot_index", "small_toe", "ankle")
                     for s in ("l", "r")], axis=1)
    lift = -feet.min(axis=1)[:, None]
    for k in pts:
        pts[k] = pts[k] + np.concatenate([np.zeros((T, 1)), lift, np.zeros((T, 1))], axis=1)
    return pts


# --------------------------------------------------------------------------------------------------
# Walks
# --------------------------------------------------------------------------------------------------

@dataclass
class WalkResult:
    """One synthetic walk: ``joints (T, J, 3)`` float64 metres (camera frame), ``valid (T, J)`` bool,
    ``frame_ok (T,)`` bool; dropped joints/frames are NaN. ``meta``: layout, fps, heading, speed, ..."""

    joints: np.ndarray
    valid: np.ndarray
    frame_ok: np.ndarray
    meta: dict = field(default_factory=dict)


def _per_walk_style(ident: WalkerIdentity, rng: np.random.Generator, variation: float) -> dict:
    v = float(variation)
    speed = 1 + v * rng.normal(0, 0.05)
    stride_f = 1 + v * rng.normal(0, 0.04)
    return {
        "cadence_hz": ident.cadence_hz * speed / stride_f,
        "stride": ident.stride * stride_f,
        "hip_flex_mean_deg": ident.hip_flex_mean_deg + v * rng.normal(0, 1.0),
        "arm_swing_deg": max(1.0, ident.arm_swing_deg * (1 + v * rng.normal(0, 0.15))),
        "arm_mean_deg": ident.arm_mean_deg + v * rng.normal(0, 1.5),
        "arm_abduction_deg": max(0.0, ident.arm_abduction_deg + v * rng.normal(0, 2.0)),
        "elbow_deg": max(0.0, ident.elbow_deg + v * rng.normal(0, 4.0)),
        "torso_lean_deg": ident.torso_lean_deg + v * rng.normal(0, 1.5),
        "head_pitch_deg": ident.head_pitch_deg + v * rng.normal(0, 3.0),
        "sway_m": max(0.0, ident.sway_m * (1 + v * rng.normal(0, 0.15))),
        "pelvis_rot_deg": max(0.0, ident.pelvis_rot_deg * (1 + v * rng.normal(0, 0.15))),
        "step_width": max(0.0, ident.step_width + v * rng.normal(0, 0.01)),
    }


def _sensor_noise(rng: np.random.Generator, shape: tuple, sd: float, corr: float) -> np.ndarray:
    """Stationary AR(1) noise along axis 0 with standard deviation ``sd`` and lag-1 correlation ``corr``
    (Kinect joint noise is smooth in time, not white)."""
    e = rng.normal(0, sd, size=shape)
    if corr <= 0 or len(e) == 0:
        return e
    out = np.empty_like(e)
    out[0] = e[0]
    k = np.sqrt(1 - corr ** 2)
    for t in range(1, len(e)):
        out[t] = corr * out[t - 1] + k * e[t]
    return out


def walk(identity: WalkerIdentity, n_frames: int, layout: str = "kinect_v1", fps: float = 30.0, seed: int = 0,
         *, heading_deg: float | None = None, heading_range: tuple[float, float] = (-110.0, -70.0),
         start: tuple[float, float] | None = None, variation: float = 1.0, noise_m: float = 0.016,
         noise_corr: float = 0.95, drop_joint_p: float = 0.0, drop_frame_p: float = 0.0,
         camera_height: float = 1.0, limp: tuple[float, float] | None = None) -> WalkResult:
    """One walk of ``identity``: ``n_frames`` frames at ``fps`` in ``layout`` (a 3D layout name).

    Deterministic in ``(identity.seed, identity.pid, seed)``. The knobs are described in the module
    docstring; ``meta`` records the heading, start, speed, cadence and every knob used.
    """
    if n_frames < 0 or fps <= 0:
        raise SyntheticError(f"need n_frames >= 0 and fps > 0 (got {n_frames}, {fps})")
    for name, p in (("drop_joint_p", drop_joint_p), ("drop_frame_p", drop_frame_p)):
        if not 0.0 <= p <= 1.0:
            raise SyntheticError(f"{name} must be in [0, 1] (got {p})")
    if not 0.0 <= noise_corr < 1.0:
        raise SyntheticError(f"noise_corr must be in [0, 1) (got {noise_corr})")
    if noise_m < 0 or variation < 0 or seed < 0:
        raise SyntheticError(f"noise_m, variation and seed must be >= 0 (got {noise_m}, {variation}, {seed})")
    rng = np.random.default_rng([identity.seed, identity.pid, int(seed), 0x3A1C])
    style = _per_walk_style(identity, rng, variation)
    if limp is not None:
        side, severity = float(limp[0]), float(limp[1])
        if side not in (-1.0, 1.0) or not 0.0 <= severity <= 1.0:
            raise SyntheticError(f"limp must be (side +1 right / -1 left, severity in [0, 1]) (got {limp})")
        style["limp"] = (side, severity)
        slow = 1.0 - 0.35 * severity  # a limping walker is slower: shorter strides, lower cadence
        style["stride"] *= slow ** 0.6
        style["cadence_hz"] *= slow ** 0.4
        style["sway_m"] *= 1.0 + 0.8 * severity  # leaning over the good leg
    phase0 = rng.uniform(0, 2 * np.pi)
    if heading_deg is None:
        heading_deg = float(rng.uniform(*heading_range))
    else:
        rng.uniform(*heading_range)  # keep the stream aligned whether or not a heading is given
    jitter = rng.normal(0, 0.3, size=2)
    t = np.arange(n_frames) / fps
    phase = phase0 + 2 * np.pi * style["cadence_hz"] * t
    pts = _skeleton(identity, style, phase)
    names = list(pts)
    body = np.stack([pts[n] for n in names], axis=1)  # (T, P, 3) body frame
    speed = style["cadence_hz"] * style["stride"]
    body[..., 2] += (speed * t)[:, None]  # progression along the body's forward axis
    h = np.deg2rad(heading_deg)
    d = np.array([-np.cos(h), 0.0, np.sin(h)])  # walking direction in the camera frame
    r = np.cross(d, [0.0, 1.0, 0.0])  # the walker's right (right-handed frame: forward x up)
    length = speed * n_frames / fps
    if start is None:
        start = (float(jitter[0] - d[0] * length / 2), float(3.5 + jitter[1] - d[2] * length / 2))
    R = np.stack([r, [0.0, 1.0, 0.0], d])  # rows: body axes in camera coordinates
    world = body @ R
    world += np.array([start[0], -camera_height, start[1]])
    idx = _layout_index(layout, names)
    joints = world[:, idx].copy()  # (T, J, 3)
    T, J = joints.shape[:2]
    if noise_m > 0:
        joints += _sensor_noise(rng, joints.shape, noise_m, noise_corr)
    valid = np.ones((T, J), dtype=bool)
    frame_ok = np.ones(T, dtype=bool)
    if drop_joint_p > 0:
        valid &= rng.random((T, J)) >= drop_joint_p
    if drop_frame_p > 0:
        frame_ok &= rng.random(T) >= drop_frame_p
    valid &= frame_ok[:, None]
    joints[~valid] = np.nan
    meta = {"layout": get_layout(layout).name, "fps": float(fps), "seed": int(seed), "pid": identity.pid,
            "heading_deg": float(heading_deg), "start": [float(start[0]), float(start[1])],
            "speed_mps": float(speed), "cadence_hz": float(style["cadence_hz"]), "stride_m": float(style["stride"]),
            "phase0": float(phase0), "variation": float(variation), "noise_m": float(noise_m), "noise_corr": float(noise_corr),
            "drop_joint_p": float(drop_joint_p), "drop_frame_p": float(drop_frame_p),
            "camera_height": float(camera_height)}
    if limp is not None:
        meta["limp"] = list(style["limp"])
    return WalkResult(joints=joints, valid=valid, frame_ok=frame_ok, meta=meta)


@dataclass
class Recording:
    """One walk of one identity, for dataset writers (``walk`` counts from 0 per identity)."""

    pid: int
    walk: int
    joints: np.ndarray  # (T, J, 3)
    valid: np.ndarray  # (T, J)
    frame_ok: np.ndarray  # (T,)
    meta: dict = field(default_factory=dict)


def walk_seed(dataset_seed: int, walk_index: int) -> int:
    """The ``seed`` that :func:`recordings` passes to :func:`walk` for walk ``walk_index``."""
    return int(dataset_seed) * 1000 + int(walk_index)


def recordings(n_identities: int, n_walks: int, n_frames: int | tuple[int, int], layout: str = "kinect_v1",
               seed: int = 0, **knobs) -> list[Recording]:
    """``n_walks`` walks of each of ``n_identities`` identities (``make_identities(n, seed)``), pid-major.

    ``n_frames`` is a length, or ``(lo, hi)`` for lengths drawn uniformly in ``[lo, hi]`` per walk.
    ``knobs`` go to :func:`walk` (``fps``, ``variation``, ``noise_m``, ``heading_deg``, ``limp``, ...);
    ``heading_deg`` may also be a callable ``(pid, walk) -> degrees`` (e.g. one view per walk) and ``limp`` a
    callable ``(pid, walk) -> (side, severity) | None`` (e.g. some walks of each person abnormal).
    """
    if n_walks < 0:
        raise SyntheticError(f"n_walks must be >= 0 (got {n_walks})")
    heading = knobs.pop("heading_deg", None)
    limp = knobs.pop("limp", None)
    out = []
    len_rng = np.random.default_rng([int(seed), 0x1E46])
    for ident in make_identities(n_identities, seed):
        for w in range(n_walks):
            T = n_frames if isinstance(n_frames, (int, np.integer)) else int(len_rng.integers(n_frames[0], n_frames[1] + 1))
            h = heading(ident.pid, w) if callable(heading) else heading
            lp = limp(ident.pid, w) if callable(limp) else limp
            res = walk(ident, int(T), layout, seed=walk_seed(seed, w), heading_deg=h, limp=lp, **knobs)
            out.append(Recording(ident.pid, w, res.joints, res.valid, res.frame_ok,
                                 {**res.meta, "walk": w, "identity": ident.as_dict()}))
    return out


# --------------------------------------------------------------------------------------------------
# Virtual camera (CASIA-B-like image projections)
# --------------------------------------------------------------------------------------------------

CASIA_VIEWS = tuple(range(0, 181, 18))  # 0, 18, ..., 180 degrees


@dataclass(frozen=True)
class VirtualCamera:
    """A pinhole camera at the origin of the (Kinect) camera frame: y up, z forward, x to the camera's left.

    ``view_deg`` is the CASIA-B view angle of a walker seen by this camera: 0 = walking towards the camera,
    90 = walking across (side view, left to right), 180 = walking away. Defaults resemble CASIA-B's
    320 x 240 videos (a 1.75 m person at 4.5 m is ~115 px tall).
    """

    view_deg: float = 90.0
    distance: float = 5.0  # metres from the camera to the middle of the walk (used by walk_in_view)
    focal_px: float = 300.0
    width: int = 320
    height: int = 240
    cx: float | None = None
    cy: float | None = None

    @property
    def walk_heading_deg(self) -> float:
        """The ``heading_deg`` to give :func:`walk` so that the walker is seen at ``view_deg``."""
        return float(self.view_deg) - 90.0

    @property
    def K(self) -> np.ndarray:
        """Intrinsic matrix (3, 3) for image coordinates with y down."""
        cx = self.width / 2 if self.cx is None else self.cx
        cy = self.height / 2 if self.cy is None else self.cy
        return np.array([[self.focal_px, 0.0, cx], [0.0, self.focal_px, cy], [0.0, 0.0, 1.0]])


def project_to_image(joints: np.ndarray, camera: VirtualCamera, root: int | list[int] | None = None) -> np.ndarray:
    """Camera-frame joints ``(..., J, 3)`` metres -> ``(..., J, 3)``: x, y image pixels (y down) and a depth
    in pixel units: ``focal * (z - z_root) / z_root``, relative to the root's depth (mean of ``root``
    joints; default: all valid joints of the frame), as the lifted CASIA-B files carry a rescaled depth.
    NaN joints stay NaN.
    """
    x = np.asarray(joints, dtype=np.float64)
    K = camera.K
    z = x[..., 2]
    u = K[0, 2] - K[0, 0] * x[..., 0] / z  # x grows to the camera's left = image left
    v = K[1, 2] - K[1, 1] * x[..., 1] / z
    if root is None:
        zr = np.nanmean(z, axis=-1, keepdims=True)
    else:
        zr = x[..., [root] if isinstance(root, int) else list(root), 2].mean(axis=-1, keepdims=True)
    depth = relative_depth_px(z, zr, K[0, 0])
    return np.stack([u, v, depth], axis=-1)


def walk_in_view(identity: WalkerIdentity, n_frames: int, camera: VirtualCamera, layout: str = "casia14",
                 seed: int = 0, **knobs) -> WalkResult:
    """A walk seen by ``camera`` at its CASIA-B view angle, in image coordinates: ``joints (T, J, 3)`` are
    x, y pixels and a depth in pixel units relative to the hip centre (:func:`project_to_image`), like the
    lifted CASIA-B skeletons. The path is centred ``camera.distance`` metres in front of the camera;
    ``knobs`` go to :func:`walk` (``heading_deg`` and ``start`` are set here). ``meta["camera"]`` records
    the camera.
    """
    for k in ("heading_deg", "start"):
        if k in knobs:
            raise SyntheticError(f"walk_in_view sets {k} from the camera; do not pass it")
    probe = walk(identity, n_frames, layout, seed=seed, heading_deg=camera.walk_heading_deg, start=(0.0, 0.0),
                 noise_m=0.0, drop_joint_p=0.0, drop_frame_p=0.0, camera_height=knobs.get("camera_height", 1.0),
                 variation=knobs.get("variation", 1.0), fps=knobs.get("fps", 30.0))
    length = probe.meta["speed_mps"] * n_frames / probe.meta["fps"]
    h = np.deg2rad(camera.walk_heading_deg)
    start = (np.cos(h) * length / 2, camera.distance - np.sin(h) * length / 2)  # path centred in view
    res = walk(identity, n_frames, layout, seed=seed, heading_deg=camera.walk_heading_deg, start=start, **knobs)
    lay = get_layout(layout)
    res.joints = project_to_image(res.joints, camera, root=list(lay.root_joints))
    res.joints[~res.valid] = np.nan
    res.meta["camera"] = asdict(camera)
    res.meta["units"] = "x, y image pixels (y down); z depth in pixels relative to the hip centre"
    return res
