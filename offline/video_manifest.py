"""Video re-ID benchmark manifests: which skeleton-tracks file is whose walk, and whether it is gallery or probe.

A manifest lists clips: skeleton tracks files written by ``cagereid extract`` (``.npz``), paths relative to the
manifest's folder. CSV (a header line, then one clip per line)::

    clip,person,role,track
    walks/ana_1.npz,ana,gallery,
    walks/ana_2.npz,ana,probe,3

or YAML (a list of mappings with the same keys, or ``{clips: [...]}``)::

    clips:
      - {clip: walks/ana_1.npz, person: ana, role: gallery}
      - {clip: walks/ana_2.npz, person: ana, role: probe, track: 3}

``role`` is ``gallery`` or ``probe``; ``track`` (optional) names the person's track in the file (default: the
track found in most frames); ``part`` (optional) is ``all`` (default), ``first`` or ``second``: the first or
second half of the track's frames, so one walk can be gallery and probe at once (a same-walk check, e.g. every
vtest track cut in halves: ``docs/video_dev/halves.py``). A clip named like CASIA-B (``SSS-CC-NN-VVV``, e.g. ``001-nm-05-090.npz``) needs
neither person nor role: the person is ``SSS`` and the role follows the usual CASIA-B protocol (``nm-01`` to
``nm-04`` gallery, every other sequence probe); the view is kept for per-view reports.

A bad manifest (missing file, unknown role, a column missing, a single person, no gallery or no probe clip) is a
`ManifestError`, printed by the CLI as one line.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from offline.errors import OfflineError

ROLES = ("gallery", "probe")
PARTS = ("all", "first", "second")
CASIA_GALLERY = ("nm", (1, 2, 3, 4))  # CASIA-B: nm-01..04 are the gallery, everything else probes


class ManifestError(OfflineError):
    """A manifest that cannot be used; the message names the file (and line) and what is wrong."""


@dataclass(frozen=True)
class ManifestEntry:
    clip: Path  # absolute path of the tracks file
    person: str
    role: str  # 'gallery' | 'probe'
    track: int | None = None  # None = the track found in most frames
    view: int | None = None  # camera angle in degrees when the name says it (CASIA-B)
    where: str = ""  # 'manifest.csv:3', for messages
    part: str = "all"  # 'all' | 'first' | 'second' half of the track's frames


def _rows(path: Path) -> list[tuple[str, dict]]:
    """``[(where, {key: value})]`` of a CSV or YAML manifest."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ManifestError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if isinstance(data, dict) and set(data) == {"clips"}:
            data = data["clips"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ManifestError(f"{path}: expected a list of {{clip, person, role}} mappings (or clips: [...])")
        return [(f"{path.name} item {i + 1}", {str(k).strip().lower(): ("" if v is None else str(v)).strip()
                                               for k, v in r.items()}) for i, r in enumerate(data)]
    if path.suffix.lower() != ".csv":
        raise ManifestError(f"{path}: a manifest is a .csv or .yaml file")
    reader = csv.reader(io.StringIO(text))
    lines = [(i + 1, r) for i, r in enumerate(reader) if r and any(c.strip() for c in r)
             and not r[0].lstrip().startswith("#")]
    if not lines:
        raise ManifestError(f"{path}: empty manifest (header clip,person,role then one clip per line)")
    header = [c.strip().lower() for c in lines[0][1]]
    if "clip" not in header:
        raise ManifestError(f"{path}: the header line must name the columns (clip,person,role[,track]); "
                            f"got {','.join(header)}")
    out = []
    for n, r in lines[1:]:
        if len(r) > len(header):
            raise ManifestError(f"{path}:{n}: {len(r)} fields, the header has {len(header)}")
        out.append((f"{path.name}:{n}", {k: (r[i].strip() if i < len(r) else "") for i, k in enumerate(header)}))
    return out


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Parse and check a manifest; returns its clips in file order (see the module docstring)."""
    from offline.casia_b import parse_name

    path = Path(path)
    entries = []
    for where, row in _rows(path):
        unknown = set(row) - {"clip", "person", "role", "track", "part"}
        if unknown:
            raise ManifestError(f"{where}: unknown column(s) {', '.join(sorted(unknown))} "
                                "(use clip, person, role, track, part)")
        clip = row.get("clip", "")
        if not clip:
            raise ManifestError(f"{where}: no clip")
        file = Path(clip) if Path(clip).is_absolute() else path.parent / clip
        if not file.is_file():
            raise ManifestError(f"{where}: {clip}: no such file")
        if file.suffix.lower() != ".npz":
            raise ManifestError(f"{where}: {clip}: not a tracks file (.npz); run `cagereid extract --source {clip} "
                                f"--out {Path(clip).with_suffix('.npz')}` first")
        casia = parse_name(file.name[:-4])
        person, role = row.get("person", ""), row.get("role", "").lower()
        if casia is not None:
            person = person or f"{casia.subject:03d}"
            in_gallery = casia.condition == CASIA_GALLERY[0] and casia.seq in CASIA_GALLERY[1]
            role = role or ("gallery" if in_gallery else "probe")
        if not person:
            raise ManifestError(f"{where}: {clip}: no person (only CASIA-B names SSS-CC-NN-VVV carry their own)")
        if role not in ROLES:
            raise ManifestError(f"{where}: {clip}: unknown role {row.get('role', '')!r} (use gallery or probe)")
        track = row.get("track", "")
        try:
            track = int(track) if track else None
        except ValueError:
            raise ManifestError(f"{where}: {clip}: track must be a track id (an integer), got {track!r}") from None
        part = (row.get("part") or "all").lower()
        if part not in PARTS:
            raise ManifestError(f"{where}: {clip}: unknown part {row.get('part')!r} (use all, first or second)")
        entries.append(ManifestEntry(file.resolve(), person, role, track, casia.angle if casia else None, where,
                                     part))
    if not entries:
        raise ManifestError(f"{path}: no clips")
    for role in ROLES:
        if not any(e.role == role for e in entries):
            raise ManifestError(f"{path}: no {role} clip (every benchmark needs gallery and probe clips)")
    people = sorted({e.person for e in entries})
    if len(people) < 2:
        raise ManifestError(f"{path}: only one person ({people[0]}); re-identification needs at least two")
    return entries


def clip_windows(entry: ManifestEntry, layout: str, f: int, stride: int = 1, policy: str | None = None,
                 min_visibility: float | None = None) -> np.ndarray:
    """The ``(N, f, J, 3)`` windows of one manifest clip: its track converted to ``layout``, missing joints
    filled by `cages.windows.MissingJoints` (the live windower's rule), windows with a gap dropped.

    ``min_visibility``: landmarks below it are missing (default: the live threshold, see `track_joints`). Raises `ManifestError` naming the clip when it has no such track.
    """
    from pose.extract import SourceError

    try:
        joints, valid = track_joints(entry.clip, layout, entry.track, min_visibility)
    except (SourceError, KeyError) as exc:
        raise ManifestError(f"{entry.where}: {exc}") from None
    if entry.part != "all":  # halves of the track's frames: no window spans both
        half = len(joints) // 2
        joints, valid = (joints[:half], valid[:half]) if entry.part == "first" else (joints[half:], valid[half:])
    return windows_of_track(joints, valid, layout, f, stride, policy)


def track_joints(path, layout: str, track: int | None = None, min_visibility: float | None = None):
    """``(joints (T, J, 3), valid (T, J))`` of one track of a tracks file (default: the one found most),
    converted from its MediaPipe landmarks with ``min_visibility`` (default: the live threshold,
    `pose.extract.MIN_VISIBILITY`, so a file made with another one reads as live reads it)."""
    from pose.extract import MIN_VISIBILITY, load_tracks

    res = load_tracks(path)
    tr = res.main_track() if track is None else res.track(track)
    return tr.layout_joints(layout, MIN_VISIBILITY if min_visibility is None else min_visibility)


def windows_of_track(joints: np.ndarray, valid: np.ndarray, layout: str, f: int, stride: int = 1,
                     policy: str | None = None, with_starts: bool = False):
    """Fill a track's missing joints with the shared policy and cut it into complete windows ``(N, f, J, 3)``
    (with ``with_starts``: ``(windows, starts)``, each window's first index in the track)."""
    from cages.windows import DEFAULT_POLICY, MissingJoints, complete_windows
    from pose.layouts import get_layout

    fill = MissingJoints.for_layout(get_layout(layout), policy or DEFAULT_POLICY)
    w, starts = complete_windows(fill.fill(joints, valid), f, stride)
    return (w, starts) if with_starts else w


def manifest_sets(entries: list[ManifestEntry], layout: str, f: int, stride: int = 1, policy: str | None = None,
                  min_visibility: float | None = None):
    """``(gallery, probe, people)``: two `WindowSet`s of the manifest's clips (pids index ``people``, the sorted
    person names; recording = the clip's line in the manifest, so each clip is one sequence)."""
    from offline.datasets.base import WindowSet

    people = sorted({e.person for e in entries})
    parts: dict[str, list] = {r: [] for r in ROLES}
    for k, e in enumerate(entries):
        w = clip_windows(e, layout, f, stride, policy, min_visibility)
        if not len(w):
            raise ManifestError(f"{e.where}: {e.clip.name}: no {f}-frame window (the track is shorter than {f} "
                                "frames or has no hip joints)")
        parts[e.role].append((w, people.index(e.person), k))
    sets = []
    for role in ROLES:
        ws = parts[role]
        sets.append(WindowSet(np.concatenate([w for w, _, _ in ws]),
                              np.concatenate([np.full(len(w), p) for w, p, _ in ws]), "VIDEO", role, layout,
                              recording=np.concatenate([np.full(len(w), k) for w, _, k in ws])))
    return sets[0], sets[1], people


def evaluate_manifest(manifest, model=None, methods=("cage", "raw-kNN", "D13-kNN"), protocols=("p1", "p2"),
                      distances=("euclidean", "cosine"), device: str = "cpu", stride: int = 1,
                      policy: str | None = None, min_visibility: float | None = None,
                      readout: str | None = None, bone_weight: float | None = None,
                      retrieval=None) -> tuple[list[dict], dict]:
    """The video re-ID benchmark: rows of `offline.evaluate.evaluate_pair` for CAGEs (``model``: a folder
    written by ``cagereid train``; default the shipped live model) and the baselines on a manifest's clips.
    ``readout``/``bone_weight`` override the model's embedding, ``retrieval`` (`offline.evaluate.Retrieval`) how
    P2 ranks (default: plain window ranking and mean walk embeddings)."""
    from cages import pretrained
    from cages.features import CageExtractor
    from cages.windows import DEFAULT_POLICY
    from offline.evaluate import PLAIN, baseline_methods, cage_method, evaluate_pair

    entries = read_manifest(manifest)
    model = Path(model) if model else Path(pretrained.LIVE_PATH)
    if not (model / "encoder.pt").is_file():
        raise ManifestError(f"{model}: no encoder.pt (a model folder written by `cagereid train --out`)")
    enc = CageExtractor.from_checkpoint(model, device="cpu")
    f, layout = enc.f, enc.layout
    gallery, probe, people = manifest_sets(entries, layout, f, stride, policy, min_visibility)
    ms = [cage_method(model, "CAGEs", None, device, readout, bone_weight)] if "cage" in methods else []
    ms += baseline_methods(gallery, tuple(m for m in methods if m != "cage"))
    retrieval = retrieval or PLAIN
    rows = []
    for m in ms:
        rows += evaluate_pair(m, gallery, probe, "probe", protocols, distances, retrieval=retrieval)
    meta = {"dataset": "video manifest", "manifest": str(Path(manifest).resolve()), "model": str(model),
            "layout": layout, "f": f, "stride": stride, "missing joints": policy or DEFAULT_POLICY,
            "min visibility": "live default" if min_visibility is None else min_visibility,
            "people": ", ".join(people), "clips": f"{sum(e.role == 'gallery' for e in entries)} gallery, "
                                                   f"{sum(e.role == 'probe' for e in entries)} probe",
            "windows": f"{gallery.n} gallery, {probe.n} probe",
            "retrieval": f"walk pooling {retrieval.walk_pool}, gallery smoothing {retrieval.gallery_smooth}"}
    return rows, meta
