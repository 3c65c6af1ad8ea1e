"""Conversions between the joint layouts of :mod:`pose.layouts`.

:func:`convert` is data: for every (source, target) pair a table gives each target joint as a
weighted sum of source joints whose weights add up to 1 (a copy, a mean, an interpolation or an
extrapolation, so the recipe works in any coordinate frame, 2D or 3D), or as missing. A missing target, or a
target whose source joints are NaN / below the visibility threshold, comes out as NaN with ``valid=False``;
nothing is ever filled with zeros. Pairs without a table are composed through intermediate layouts when a
path exists (recipes compose exactly: weights multiply). ``python -m pose.convert`` prints every table as
Markdown (this is how ``docs/layouts_and_synthetic.md`` is made).

>>> x = np.zeros((33, 3)); x[23] = [0.1, 0.9, 2.0]; x[24] = [-0.1, 0.9, 2.0]   # MediaPipe hips
>>> out, valid = convert(x, "mediapipe33", "kinect_v1")
>>> out[0].tolist(), bool(valid[0])        # HipCenter = mean of the hips
([0.0, 0.9, 2.0], True)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pose.layouts import (_CM, _K1, _K2, _UC, HAND_EXTRAPOLATION, LAYOUTS, V1_SPINE_T, V2_SPINEMID_T, Layout, LayoutError,
                          get_layout)

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
