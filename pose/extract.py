"""``cagereid extract``'s job: run the pose pipeline (`pose.pipeline`) over a whole source and collect per-track
skeleton sequences (`extract`), written as a tracks file (`pose.tracks_file`), optionally with an overlay video
and OpenPose-style JSON.

The pipeline, its observations and the tracks file format are re-exported here, so ``from pose.extract import
iter_tracks, load_tracks, ...`` keeps working.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pose.pipeline import (AXES, MEDIAPIPE, MIN_VISIBILITY, ExtractError, FrameTracks, PosePipeline,  # noqa: F401
                           TrackObservation, _as_source, _layout_name, convert_world, iter_tracks, to_layout_axes)
from pose.smoothing import fill_gaps
from pose.sources import FrameSource, SourceError
from pose.tracks_file import (FORMAT, FORMAT_VERSION, ExtractResult, TrackSequence, load_tracks,  # noqa: F401
                              save_tracks)


def _build_track(tid: int, obs: list[TrackObservation], layouts, max_gap: int, min_visibility: float):
    first, last = obs[0].frame_index, obs[-1].frame_index
    T = last - first + 1
    frames = np.arange(first, last + 1)
    ts = np.full(T, np.nan)
    found = np.zeros(T, bool)
    world = np.full((T, 33, 3), np.nan)
    kp = np.full((T, 33, 2), np.nan)
    vis = np.full((T, 33), np.nan)
    bbox = np.full((T, 4), np.nan)
    root = np.full((T, 3), np.nan)
    crowded = np.zeros(T, bool)
    for o in obs:
        i = o.frame_index - first
        ts[i] = o.timestamp_s
        bbox[i] = o.bbox
        crowded[i] = o.crowded
        if o.found:
            found[i] = True
            world[i], kp[i], vis[i] = o.world33, o.keypoints2d, o.visibility
            if o.root is not None:
                root[i] = o.root
    # frames of the range without any observation (e.g. a track not posed that frame): time by interpolation
    known = np.isfinite(ts)
    if not known.all():
        ts = np.interp(frames, frames[known], ts[known])
    world, filled = fill_gaps(world, found, ts, max_gap)
    kp, _ = fill_gaps(kp, found, ts, max_gap)
    vis, _ = fill_gaps(vis, found, ts, max_gap)
    root, _ = fill_gaps(root, found, ts, max_gap)
    if crowded.any():  # nothing is interpolated across frames dropped because another person overlapped
        world[crowded], kp[crowded], vis[crowded], root[crowded] = np.nan, np.nan, np.nan, np.nan
        filled &= ~crowded
    seq = TrackSequence(tid, frames, ts, found, filled, world, kp, vis, bbox, root, crowded)
    vis0 = np.where(np.isfinite(vis), vis, 0.0)
    for name in layouts:
        if name == MEDIAPIPE:
            continue
        seq.joints[name], seq.valid[name] = convert_world(world, vis0, name, min_visibility)
    return seq


def _crowded_lookback(obs: list[TrackObservation], frames: int) -> None:
    """Offline, the frames just before another person was first seen overlapping a track are dropped too: the
    detector checks every ``auto_check_every`` frames, so the person may have arrived up to that many frames
    earlier (live use cannot look back)."""
    if frames <= 0:
        return
    for k in range(1, len(obs)):
        if obs[k].crowded and not obs[k - 1].crowded:
            first = obs[k].frame_index
            for o in obs[max(0, k - frames):k]:
                if first - o.frame_index <= frames:
                    o.found, o.crowded = False, True


def extract(source, out_npz=None, overlay=None, openpose_dir=None, layouts=("kinect_v1", "casia14"),
            progress: bool = True, *, multi_person: bool | str = "auto", max_frames: int | None = None,
            min_track_frames: int = 5, max_gap: int = 5, **pipeline_kw) -> ExtractResult:
    """Run the pipeline over a whole source and collect per-track skeleton sequences.

    ``out_npz``: write the result there (atomically; see `save_tracks`). ``overlay``: an ``.mp4`` / ``.avi``
    with skeletons and track ids drawn. ``openpose_dir``: one OpenPose-style ``<stem>_<frame:012d>_keypoints.json``
    per frame (BODY_25 2D keypoints of the confirmed people). ``layouts``: 3D layouts to store besides the raw
    ``mediapipe33``. Tracks found in fewer than ``min_track_frames`` frames are dropped; gaps of at most
    ``max_gap`` frames are interpolated and flagged ``filled``.

    If the source breaks half-way (or on Ctrl-C), everything extracted so far is still written, and the
    `SourceError` (or KeyboardInterrupt) is raised afterwards with a note of what was kept.
    """
    layouts = tuple(_layout_name(n) for n in layouts)
    src = _as_source(source, max_frames)
    primary = layouts[0] if layouts else "kinect_v1"
    per_track: dict[int, list[TrackObservation]] = {}
    writer = None
    op_people = None
    error: BaseException | None = None
    n = 0
    t_start = time.perf_counter()
    params = {"multi_person": multi_person, "min_track_frames": min_track_frames, "max_gap": max_gap,
              **{k: v for k, v in pipeline_kw.items() if isinstance(v, (int, float, str, bool, type(None)))}}
    pipe = PosePipeline(multi_person=multi_person, layout=primary, **pipeline_kw)
    bar = _Progress(progress, src)
    try:
        if overlay is not None:
            from pose.overlay import OverlayWriter

            writer = OverlayWriter(overlay, fps=src.fps or 25.0)
        if openpose_dir is not None:
            op_people = _OpenPoseDir(openpose_dir, src.name)
        with bar:
            for frame in src:
                obs = pipe.step(frame)
                n += 1
                for o in obs:
                    per_track.setdefault(o.track_id, []).append(o)
                shown = [o for o in obs if o.found and o.confirmed]
                if writer is not None:
                    writer.write(frame.image_bgr, shown, frame.index, mode=pipe.mode)
                if op_people is not None:
                    op_people.write(frame.index, shown)
                bar.advance(len(shown))
    except (SourceError, KeyboardInterrupt) as exc:
        if isinstance(exc, SourceError) and n == 0 and not per_track:
            pipe.close()
            if writer is not None:
                writer.abort()
            raise
        error = exc
    finally:
        pipe.close()
    wall = time.perf_counter() - t_start
    lookback = pipe.auto_check_every - 1 if multi_person == "auto" else 0
    tracks = []
    for tid, obs in sorted(per_track.items()):
        _crowded_lookback(obs, lookback)
        found = [o for o in obs if o.found]
        if len(found) < min_track_frames:
            continue
        # trim to first..last found frame
        obs = [o for o in obs if found[0].frame_index <= o.frame_index <= found[-1].frame_index]
        tracks.append(_build_track(tid, obs, layouts, max_gap, pipe.min_visibility))
    frames_with_pose = len({int(f) for t in tracks for f in t.frames[t.found]})
    stats = dict(pipe.stats)
    stats.update({"wall_s": round(wall, 3), "fps": round(n / wall, 3) if wall > 0 else None,
                  "ms_per_person_frame": round(1000 * stats["pose_s"] / max(stats["pose_calls"], 1), 3),
                  "mode": pipe.mode, "switched_to_multi_at": pipe.switched_at,
                  "detector_s": round(stats["detector_s"], 3), "pose_s": round(stats["pose_s"], 3)})
    err_text = None
    if error is not None:
        err_text = str(error) if isinstance(error, SourceError) else "interrupted"
    result = ExtractResult(str(src.spec), src.kind, src.fps, src.size, n, layouts, tracks, frames_with_pose,
                           error is None, err_text, stats, params)
    if writer is not None:
        writer.close()
    if out_npz is not None:
        save_tracks(out_npz, result)
    if error is not None:
        if isinstance(error, SourceError):
            kept = f"; kept {n} frames, {len(tracks)} tracks" + (f" in {out_npz}" if out_npz else "")
            raise SourceError(f"{error}{kept}") from None
        raise KeyboardInterrupt(f"kept {n} frames, {len(tracks)} tracks" + (f" in {out_npz}" if out_npz else ""))
    return result


class _Progress:
    def __init__(self, enabled: bool, src: FrameSource):
        self.enabled = enabled
        self.total = src.expected_frames()
        self.name = src.name
        self._p = None
        self._task = None
        self.people = 0

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._p = Progress(TextColumn("[bold]extract[/] {task.description}"), BarColumn(),
                               MofNCompleteColumn(), TextColumn("{task.fields[people]} person-frames"),
                               TimeRemainingColumn(), transient=False, console=Console(stderr=True))  # status: stderr
            self._p.__enter__()
            self._task = self._p.add_task(self.name, total=self.total, people=0)
        return self

    def advance(self, people: int) -> None:
        self.people += people
        if self._p is not None:
            self._p.update(self._task, advance=1, people=self.people)

    def __exit__(self, *exc):
        if self._p is not None:
            self._p.__exit__(*exc)


class _OpenPoseDir:
    """Writes ``<stem>_<frame:012d>_keypoints.json`` per frame via `pose.openpose.write_frame_json`."""

    def __init__(self, folder, stem: str):
        from pose.openpose import write_frame_json

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stem = stem
        self._write = write_frame_json

    def write(self, frame_index: int, observations: list[TrackObservation]) -> None:
        from pose.convert import convert

        people = []
        for o in observations:
            kp, valid = convert(o.keypoints2d, MEDIAPIPE, "openpose_body25", visibility=o.visibility,
                                min_visibility=0.1)
            conf, _ = convert(o.visibility[:, None], MEDIAPIPE, "openpose_body25")
            conf = np.where(valid, conf[:, 0], 0.0)
            people.append((np.where(valid[:, None], kp, 0.0), conf))
        self._write(self.folder / f"{self.stem}_{frame_index:012d}_keypoints.json", people)
