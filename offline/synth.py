"""Synthetic datasets in the exact CAGE pre-processed layout, built from the parametric walker.

`synth_dataset` generates walks with `pose.synthetic` (identities with stable body and gait parameters,
per-walk variation, sensor noise), splits them like the real dataset, cuts windows the CAGE way and
writes them with `offline.datasets.cage_layout.write_cage_dataset`, so tests and demos run the very code
paths real data takes. Everything is deterministic given ``seed``.

Window order (CAGE_SPEC §1.4): non-overlapping windows of ``f`` frames (stride ``f``), repeated for
``rounds`` start offsets ``s = 0 .. rounds-1``, stacked offset-major: all windows of offset 0 (person by
person, each person's walks in order, windows in temporal order), then offset 1, ... Per window we also
record ``recording`` (a walk id, below), ``offset`` (s) and ``start`` (first frame in its walk).

Splits (ours where the original is unknown; the walker cannot stand still, carry a bag or change clothes,
so those conditions are approximated as documented here):

========================  =======================================================================
BIWI                      people: a sorted subset of ids 0..49 (as in the release). ``train``: 2 walks
                          (towards the camera and away); ``Walking``: 1 walk towards the camera;
                          ``Still``: 1 walk across the view, with low per-walk variation (our stand-in).
IAS                       ids 1..n. ``train``: 2 walks; ``A`` (other clothes): 1 walk with 1.5x per-walk
                          variation and noise; ``B`` (other room): 1 walk, camera 1.4 m high instead of 1.0,
                          other position.
KGBD                      ids 1..n, 4 walks per person in random directions; one random walk per person
                          (seeded) is the ``test`` split, the rest ``train``.
KS20                      ids 0..n-1; 5 viewpoints (0, 30, 90, 130, 180 degrees) x 3 walks (gc1..gc3).
                          ``view=None``: per person and viewpoint one random walk held out as ``test``;
                          ``view=v``: cross-view split, ``test`` = every walk seen from viewpoint v,
                          ``train`` = the other viewpoints.
CASIA_B (CVE, view v)     ids 1..n, 14-joint skeletons projected to 320x240 images (x, y pixels, z depth
                          in pixels; `pose.synthetic.project_to_image`), 25 fps, walker seen at 18·v
                          degrees. Per person nm-01..06, bg-01..02, cl-01..02 (bg 1.5x, cl 2x per-walk
                          variation). ``train`` = nm-01..04, bg-01, cl-01; ``test`` = nm-05..06, bg-02, cl-02.
CASIA_B_match (CME)       ids 1..n; the first n - n//2 people are ``train`` (all conditions), the others
                          are test people: ``nm`` (nm-01, nm-02), ``bg`` (bg-01), ``cl`` (cl-01), each at
                          views 54, 90 and 126 degrees; ``test_all`` = the nm, bg and cl windows
                          concatenated (the top-level test files CME reads for statistics).
========================  =======================================================================

``recording`` ids: ``pid * 1000 + k`` with ``k`` the walk number of that person in this dataset
(KS20: ``10 * viewpoint + gc``; CASIA: ``100 * condition + 10 * number + view index``, condition
nm=1, bg=2, cl=3, 11 = no view). A ``synth.json`` beside the split folders records the parameters and
which walk went to which split.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from cages.io import write_json
from cages.windows import sliding_windows
from offline.datasets import registry
from offline.datasets.base import DatasetError, WindowSet
from offline.datasets.cage_layout import (
    DATASET_LAYOUT, DEFAULT_F, _check_view, canonical_dataset, dataset_folder, split_names, write_cage_dataset,
)
from offline.errors import OfflineError

#: Frames per walk by default (at least ``2 f + rounds`` so that every offset round gives windows).
DEFAULT_FRAMES: dict[str, int] = {d.name: d.synth_frames for d in registry.REGISTRY if d.synth}
DEFAULT_ROUNDS = 10
KS20_VIEW_DEG = (0.0, 30.0, 90.0, 130.0, 180.0)  # cross-view split viewpoints (CAGE_SPEC §1.5)
CME_VIEWS = (3, 5, 7)  # 54, 90, 126 degrees
_CONDITION_CODE = {"nm": 1, "bg": 2, "cl": 3}
_DATASET_CODE = {d.name: i + 1 for i, d in enumerate(registry.REGISTRY) if d.synth}  # seeds: BIWI 1 ... CME 6



@dataclass
class WalkSpec:
    """One walk to generate and where it goes."""

    split: str
    pid: int  # dataset person id
    identity: int  # index into make_identities
    recording: int  # unique walk id within the dataset
    knobs: dict = field(default_factory=dict)  # extra `pose.synthetic.walk` keyword arguments
    view_deg: float | None = None  # CASIA: project to an image seen at this view
    walk_key: int = -1  # the physical walk of this person (CASIA: the same walk seen from several views)

    def __post_init__(self) -> None:
        if self.walk_key < 0:
            self.walk_key = self.recording % 1000


def default_frames(dataset: str, f: int, rounds: int = DEFAULT_ROUNDS) -> int:
    return max(DEFAULT_FRAMES[canonical_dataset(dataset)], 2 * f + rounds)


def plan_walks(dataset: str, identities: int, seed: int, view: int | None = None) -> list[WalkSpec]:
    """Which walks make up each split (see the module docstring). Deterministic in ``seed``."""
    ds = canonical_dataset(dataset)
    n = int(identities)
    rng = np.random.default_rng([int(seed), _DATASET_CODE[ds], 0x5917])
    specs: list[WalkSpec] = []
    towards, away, across = -90.0, 90.0, 0.0
    if ds == "BIWI":
        pids = np.sort(rng.choice(50, size=n, replace=False)) if n <= 50 else np.arange(n)
        for i, pid in enumerate(pids.tolist()):
            specs += [WalkSpec("train", pid, i, pid * 1000 + 0, {"heading_deg": towards}),
                      WalkSpec("train", pid, i, pid * 1000 + 1, {"heading_deg": away}),
                      WalkSpec("Walking", pid, i, pid * 1000 + 2, {"heading_deg": towards}),
                      WalkSpec("Still", pid, i, pid * 1000 + 3, {"heading_deg": across, "variation": 0.3})]
    elif ds == "IAS":
        for i in range(n):
            pid = i + 1
            specs += [WalkSpec("train", pid, i, pid * 1000 + 0, {"heading_deg": towards}),
                      WalkSpec("train", pid, i, pid * 1000 + 1, {"heading_deg": away}),
                      WalkSpec("A", pid, i, pid * 1000 + 2, {"heading_deg": towards, "variation": 1.5,
                                                             "noise_scale": 1.5}),
                      WalkSpec("B", pid, i, pid * 1000 + 3, {"heading_deg": towards, "camera_height": 1.4,
                                                             "start": (0.6, 5.0)})]
    elif ds == "KGBD":
        for i in range(n):
            pid = i + 1
            held_out = int(rng.integers(4))
            for k in range(4):
                heading = float(rng.uniform(-150.0, 150.0))
                specs.append(WalkSpec("test" if k == held_out else "train", pid, i, pid * 1000 + k,
                                      {"heading_deg": heading}))
    elif ds == "KS20":
        for i in range(n):
            pid = i
            for v, deg in enumerate(KS20_VIEW_DEG):
                held_out = int(rng.integers(3))
                for gc in range(3):
                    split = ("test" if gc == held_out else "train") if view is None else \
                        ("test" if v == view else "train")
                    # Viewpoint = direction relative to the camera: 0 deg = towards it, 180 = away.
                    specs.append(WalkSpec(split, pid, i, pid * 1000 + 10 * v + gc, {"heading_deg": deg - 90.0}))
    elif ds == "CASIA_B":
        conditions = [("nm", k) for k in range(1, 7)] + [("bg", 1), ("bg", 2), ("cl", 1), ("cl", 2)]
        for i in range(n):
            pid = i + 1
            for cond, k in conditions:
                test = (cond == "nm" and k >= 5) or (cond != "nm" and k == 2)
                specs.append(WalkSpec("test" if test else "train", pid, i,
                                      pid * 1000 + 100 * _CONDITION_CODE[cond] + 10 * k + int(view),
                                      _condition_knobs(cond), view_deg=18.0 * int(view),
                                      walk_key=100 * _CONDITION_CODE[cond] + 10 * k))
    elif ds == "CASIA_B_match":
        n_train = n - n // 2
        for i in range(n):
            pid = i + 1
            plan = ([("train", "nm", 1), ("train", "nm", 2), ("train", "bg", 1), ("train", "cl", 1)] if i < n_train
                    else [("nm", "nm", 1), ("nm", "nm", 2), ("bg", "bg", 1), ("cl", "cl", 1)])
            for split, cond, k in plan:
                for v in CME_VIEWS:
                    specs.append(WalkSpec(split, pid, i, pid * 1000 + 100 * _CONDITION_CODE[cond] + 10 * k + v,
                                          _condition_knobs(cond), view_deg=18.0 * v,
                                          walk_key=100 * _CONDITION_CODE[cond] + 10 * k))
    return specs


def _condition_knobs(cond: str) -> dict:
    return {"variation": {"nm": 1.0, "bg": 1.5, "cl": 2.0}[cond]}


def cage_windows(walks: list[tuple[int, int, np.ndarray]], f: int, rounds: int = DEFAULT_ROUNDS
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``[(pid, recording, seq (T, J, 3))]`` the CAGE way (offset-major, person, walk, time).

    Returns ``windows (N, f, J, 3), pids, recording, offset, start`` (all ``(N,)`` int64 but windows).
    ``walks`` must already be in person order; the order inside one offset round is the list order.
    """
    parts = []
    for s in range(rounds):
        for pid, rec, seq in walks:
            w, starts = sliding_windows(seq, f, stride=f, offset=s)
            if len(w):
                parts.append((w, pid, rec, s, starts))
    if not parts:
        J = walks[0][2].shape[1] if walks else 0
        empty = np.zeros(0, np.int64)
        return np.zeros((0, f, J, 3)), empty, empty, empty, empty
    windows = np.concatenate([p[0] for p in parts]).astype(np.float64)
    pids = np.concatenate([np.full(len(p[0]), p[1]) for p in parts]).astype(np.int64)
    recording = np.concatenate([np.full(len(p[0]), p[2]) for p in parts]).astype(np.int64)
    offset = np.concatenate([np.full(len(p[0]), p[3]) for p in parts]).astype(np.int64)
    start = np.concatenate([p[4] for p in parts]).astype(np.int64)
    return windows, pids, recording, offset, start


def synth_dataset(out: str | os.PathLike | None, dataset: str, f: int | None = None, identities: int = 20,
                  seed: int = 0, view: int | None = None, frames: int | None = None, noise: float | None = None,
                  rounds: int = DEFAULT_ROUNDS, monocular: bool = False) -> dict[str, WindowSet]:
    """Generate one synthetic dataset and (unless ``out`` is None) write it under ``out`` (a ``Datasets/``).

    ``f``: window length (default 6 Kinect sets, 20 CASIA_B, 50 CASIA_B_match); ``identities``: people;
    ``view``: KS20 0..4 (optional), CASIA_B 0..10 (required); ``frames``: frames per walk (default
    `default_frames`); ``noise``: sensor noise sd in metres (default 0.01); ``rounds``: offset
    rounds; ``monocular`` (Kinect layouts): walks in every direction, degraded like monocular MediaPipe
    output and filled like live windows (`offline.degrade.monocular_filled`). Returns ``{split: WindowSet}``,
    exactly what `read_cage_dataset` reads back.
    """
    from pose.synthetic import VirtualCamera, make_identities, project_to_image, walk

    ds = canonical_dataset(dataset)
    f = DEFAULT_F[ds] if f is None else int(f)
    view = _check_view(ds, view)
    if identities < 1 or (ds == "CASIA_B_match" and identities < 2):
        raise OfflineError(f"need at least {2 if ds == 'CASIA_B_match' else 1} identities (got {identities})")
    if f < 1 or rounds < 1:
        raise OfflineError(f"need f >= 1 and rounds >= 1 (got f={f}, rounds={rounds})")
    frames = default_frames(ds, f, rounds) if frames is None else int(frames)
    if frames < f:
        raise OfflineError(f"--frames {frames} is shorter than one window (f={f})")
    if noise is not None and noise < 0:
        raise OfflineError(f"noise must be >= 0 (got {noise})")
    layout, J = DATASET_LAYOUT[ds]
    casia = ds.startswith("CASIA_B")
    if monocular and casia:
        raise OfflineError("--monocular applies to the Kinect datasets (3D metres), not CASIA-B")
    fps = 25.0 if casia else 30.0
    base_noise = 0.01 if noise is None else float(noise)

    specs = plan_walks(ds, identities, seed, view)
    people = make_identities(int(identities), int(seed))
    per_split: dict[str, list[tuple[int, int, np.ndarray]]] = {s: [] for s in split_names(ds)}
    for spec in specs:
        knobs = dict(spec.knobs)
        noise_m = base_noise * knobs.pop("noise_scale", 1.0)
        # Same (dataset, seed, person, walk_key) -> the same walk, whatever the view or split.
        walk_seed = _DATASET_CODE[ds] * 10_000 + spec.walk_key
        camera = None
        if spec.view_deg is not None:
            camera = VirtualCamera(view_deg=spec.view_deg)
            knobs["heading_deg"] = camera.walk_heading_deg
            knobs.setdefault("start", None)
        mono_rng = np.random.default_rng([walk_seed, int(seed), 0x30C])
        if monocular:  # the live camera sees people from every side, most often in profile
            knobs["heading_deg"] = float(mono_rng.uniform(-180.0, 180.0))
        res = walk(people[spec.identity], frames, layout, fps, seed=walk_seed, noise_m=noise_m, **knobs)
        seq = res.joints
        if monocular:
            from offline.degrade import monocular_filled
            from pose.layouts import get_layout

            seq = monocular_filled(seq, get_layout(layout), mono_rng)
        if camera is not None:
            seq = project_to_image(seq, camera)
        if not np.isfinite(seq).all():
            raise DatasetError(f"{ds}: walker produced NaN/inf for person {spec.pid} (walk {spec.recording})")
        per_split[spec.split].append((spec.pid, spec.recording, seq))

    splits: dict[str, WindowSet] = {}
    for split, walks in per_split.items():
        if not walks:
            continue
        windows, pids, recording, offset, start = cage_windows(walks, f, rounds)
        splits[split] = WindowSet(
            windows=windows, pids=pids, dataset=ds, split=split, layout=layout, recording=recording,
            offset=offset, start=start,
            meta={"synthetic": True, "seed": int(seed), "f": f, "view": view, "frames": frames,
                  "rounds": rounds, "noise_m": base_noise, "units": "pixels" if casia else "metres",
                  "monocular": bool(monocular)},
        )
    if ds == "CASIA_B_match":  # the top-level test files: the nm, bg and cl windows, in that order
        parts = [splits[c] for c in ("nm", "bg", "cl")]
        splits["test_all"] = WindowSet(
            windows=np.concatenate([w.windows for w in parts]), pids=np.concatenate([w.pids for w in parts]),
            dataset=ds, split="test_all", layout=layout,
            recording=np.concatenate([w.recording for w in parts]), offset=np.concatenate([w.offset for w in parts]),
            start=np.concatenate([w.start for w in parts]), meta=dict(parts[0].meta))
    if out is not None:
        write_cage_dataset(out, ds, f, splits, view=view)
        write_json(dataset_folder(out, ds, f, view) / "synth.json", {
            "dataset": ds, "f": f, "view": view, "identities": int(identities), "seed": int(seed),
            "frames_per_walk": frames, "rounds": rounds, "noise_m": base_noise, "fps": fps,
            "layout": layout, "J": J, "units": "pixels (x, y) + pixel depth" if casia else "metres",
            "monocular": bool(monocular),
            "walks": [{"split": s.split, "pid": s.pid, "recording": s.recording, "view_deg": s.view_deg,
                       **{k: v for k, v in s.knobs.items() if k != "start"}} for s in specs],
        })
    return splits


def synth_all_targets(dataset: str, view: int | None) -> list[tuple[str, int | None]]:
    """``[(dataset, view)]`` that ``--dataset`` (possibly ``ALL``) expands to."""
    if str(dataset).upper() == "ALL":
        targets: list[tuple[str, int | None]] = [("BIWI", None), ("IAS", None), ("KGBD", None), ("KS20", None)]
        targets += [("KS20", v) for v in range(5) if view is None or v == view]
        targets += [("CASIA_B", v) for v in (range(11) if view is None else [view])]
        targets += [("CASIA_B_match", None)]
        return targets
    ds = canonical_dataset(dataset)
    if ds == "CASIA_B" and view is None:
        raise OfflineError("CASIA_B (CVE) is per view: give --view 0..10 (angle 18·v degrees)")
    return [(ds, view)]


def walker_windows(f: int, layout: str, identities: int = 60, walks: int = 3, frames: int = 120, stride: int = 2,
                   seed: int = 123, dataset: str = "SYNTH", limp_walks: int = 0, positives: str = "walk") -> WindowSet:
    """Sliding windows of synthetic walkers (`pose.synthetic.recordings`, default knobs: walks towards the camera
    +-20 deg, Kinect-like noise) in any 3D ``layout``: label-free pretraining data for an encoder of that layout
    (`offline.evaluate.pretrain_synthetic`). ``recording`` = ``pid * 100 + walk`` (positives come from one walk),
    ``start`` = first frame. Deterministic in ``seed``.

    ``limp_walks``: the last that many walks of each person limp (`pose.synthetic.walk`'s ``limp``: a random
    leg, severity uniform in [0.3, 1]). ``positives="person"`` gives every walk of a person one ``recording``
    (``pid * 100``), so that windows of another walk of the same synthetic person (e.g. a limping one) become
    positives too (the generator's identities, never a real label)."""
    from pose.synthetic import recordings

    if min(identities, walks) < 1 or frames < f or stride < 1:
        raise OfflineError(f"synthetic walkers: need identities, walks, stride >= 1 and frames >= f = {f} "
                           f"(got {identities}, {walks}, {stride}, {frames})")
    if not 0 <= limp_walks <= walks or positives not in ("walk", "person"):
        raise OfflineError(f"synthetic walkers: need 0 <= limp_walks <= walks and positives walk|person "
                           f"(got {limp_walks}, {positives!r})")

    def limp(pid: int, walk: int):
        if walk < walks - limp_walks:
            return None
        g = np.random.default_rng([int(seed), int(pid), int(walk), 0x11AB])
        return (float(g.choice([-1.0, 1.0])), float(g.uniform(0.3, 1.0)))

    wins, pids, rec, start = [], [], [], []
    for r in recordings(identities, walks, frames, layout=layout, seed=seed, limp=limp if limp_walks else None):
        w, s = sliding_windows(r.joints, f, stride)
        wins.append(w)
        pids += [r.pid] * len(w)
        rec += [r.pid * 100 + (0 if positives == "person" else r.walk)] * len(w)
        start += s.tolist()
    return WindowSet(np.concatenate(wins).astype(np.float32), np.array(pids), dataset, "synthetic", layout,
                     np.array(rec), np.zeros(len(pids)), np.array(start),
                     meta={"identities": identities, "walks": walks, "frames": frames, "stride": stride, "seed": seed,
                           "limp_walks": limp_walks, "positives": positives})
