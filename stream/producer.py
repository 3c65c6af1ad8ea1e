"""Pose producer stage: reads a pose source and publishes one `FrameMsg` per source frame (every track seen in
that frame).

Sources (``--source``):

* ``synthetic[:key=value,...]``: parametric 3D walkers from `pose.synthetic` (no camera, no data). Keys:
  ``people`` (population size, 8), ``seed`` (population seed, 0), ``ids`` (who walks, e.g. ``0-4+6``; all),
  ``frames`` (frames per walk, 300), ``walks`` (walks per person, 0 = endless), ``walk_seed`` (1000),
  ``heading`` (degrees, -90 = towards the camera, +-10 per walk; default random within +-20 of -90, the walker's default) and
  ``variation`` (per-walk style variation in percent, 100).
  Everyone in ``ids`` walks at the same time, one track each; every new walk is a new track.
* ``FILE.npz``: skeleton tracks recorded by ``cagereid extract`` (replayed at ``fps``).
* a camera index (``0``) or a video file: frames -> `pose.extract.iter_tracks` (detect, track, 3D pose).

Connects a PUSH socket to the windower (which binds), so a restarted producer reconnects by itself. Sends
never block: a full queue drops the frame and counts it (``dropped``).
"""
from __future__ import annotations

import os
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from stream.config import StreamConfig
from stream.errors import SourceError

NAMES = ("ana", "ben", "chen", "dara", "eli", "fay", "gus", "hana", "ivo", "jun", "kai", "lea", "milo", "nia",
         "omar", "pia", "quinn", "rui", "sara", "tom")


def walker_name(index: int) -> str:
    """The display/ground-truth name of synthetic identity ``index``."""
    return NAMES[index] if index < len(NAMES) else f"walker{index}"


@dataclass
class Observation:
    track: int
    frame: int
    t_capture: float
    joints: np.ndarray  # (J, 3) metres, NaN where missing
    valid: np.ndarray  # (J,) bool
    label: str = ""


@dataclass
class SyntheticSpec:
    people: int = 8
    seed: int = 0
    ids: tuple[int, ...] = ()
    frames: int = 300
    walks: int = 0
    walk_seed: int = 1000
    heading: int | None = None  # walking direction in degrees (-90 = towards the camera); None = random +-20 (the walker's default)
    variation: int = 100  # per-walk style variation in percent of the walker's default (speed, stride, posture)

    @property
    def who(self) -> tuple[int, ...]:
        return self.ids or tuple(range(self.people))


def _parse_ids(text: str, origin: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in text.split("+"):
        a, _, b = part.partition("-")
        try:
            out.extend(range(int(a), int(b) + 1) if b else [int(a)])
        except ValueError:
            raise SourceError(f"{origin}: bad ids {text!r} (e.g. ids=0-4+6)") from None
    return tuple(out)


def parse_synthetic(spec: str) -> SyntheticSpec:
    """``synthetic:people=8,ids=0-4,frames=240`` -> `SyntheticSpec` (SourceError on anything unknown)."""
    s = SyntheticSpec()
    _, _, rest = str(spec).partition(":")
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in SyntheticSpec.__dataclass_fields__:
            raise SourceError(f"{spec}: unknown synthetic option {item!r} "
                              f"(use {', '.join(SyntheticSpec.__dataclass_fields__)})")
        if key == "ids":
            s.ids = _parse_ids(value, spec)
        else:
            try:
                setattr(s, key, None if value == "random" and key == "heading" else int(value))
            except ValueError:
                raise SourceError(f"{spec}: {key} must be an integer, not {value!r}") from None
    if s.people < 1 or s.frames < 2 or s.walks < 0 or any(not 0 <= i < s.people for i in s.who):
        raise SourceError(f"{spec}: need people >= 1, frames >= 2, walks >= 0 and ids within 0..people-1")
    return s


def synthetic_walk(spec: SyntheticSpec, identity: int, k: int, layout: str = "kinect_v1",
                   frames: int | None = None, fps: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Walk number ``k`` of identity ``identity``: joints ``(T, J, 3)`` (NaN where untracked), valid ``(T, J)``.

    Walks are deterministic in ``(spec.seed, identity, spec.walk_seed, k)``; the heading is the walker's
    default (towards the camera +-20 degrees), the start is random around 3.5 m from the camera.
    """
    from pose import synthetic

    people = synthetic.make_identities(spec.people, seed=spec.seed)
    seed = zlib.crc32(f"{spec.walk_seed}/{identity}/{k}".encode())
    heading = None
    if spec.heading is not None:  # a corridor: everybody walks the same way, +-10 degrees
        heading = spec.heading + float(np.random.default_rng(seed).uniform(-10, 10))
    res = synthetic.walk(people[identity], frames or spec.frames, layout=layout, fps=fps, seed=seed,
                         heading_deg=heading, variation=spec.variation / 100)
    return np.asarray(res.joints, dtype=np.float32), np.asarray(res.valid, dtype=bool)


def _synthetic(spec: str, layout: str, fps: float) -> Iterator[list[Observation]]:
    s = parse_synthetic(spec)
    k = 0
    track = 0
    while s.walks == 0 or k < s.walks:
        walks = [(i, *synthetic_walk(s, i, k, layout, fps=fps)) for i in s.who]
        for t in range(s.frames):
            yield [Observation(track + slot, t, (k * s.frames + t) / fps, joints[t], valid[t], walker_name(i))
                   for slot, (i, joints, valid) in enumerate(walks)]
        track += len(walks)
        k += 1


def _recorded(path: Path, layout: str, fps: float) -> Iterator[list[Observation]]:
    """Replay tracks saved by ``cagereid extract`` (all tracks of a frame index together)."""
    from pose.extract import load_tracks

    res = load_tracks(path)
    seqs = []
    for tr in res.tracks:
        if layout in tr.joints:  # from the landmarks with the live visibility threshold (files made with another)
            joints, valid = tr.layout_joints(layout)
        elif tr.joints:
            from pose.convert import convert

            src = next(iter(tr.joints))
            joints, valid = convert(np.where(tr.valid[src][..., None], tr.joints[src], np.nan), src, layout)
        else:
            raise SourceError(f"{path}: track {tr.track_id} has no 3D joints in any layout")
        seqs.append((tr, np.asarray(joints, np.float32), np.asarray(valid, bool)))
    rate = res.fps or fps
    frames = sorted({int(fr) for tr, _, _ in seqs for fr in tr.frames})
    index = [{int(fr): i for i, fr in enumerate(tr.frames)} for tr, _, _ in seqs]
    for fr in frames:
        group = []
        for (tr, joints, valid), idx in zip(seqs, index):
            i = idx.get(fr)
            if i is not None and valid[i].any():
                group.append(Observation(int(tr.track_id), fr, fr / rate, joints[i], valid[i]))
        if group:
            yield group


class FrameGroup(list):
    """The observations of one video frame plus, for the live overlay, the image (``.image``, BGR), its index
    and the people as drawn (``.shown``: `pose.pipeline` observations with 2D keypoints and boxes)."""

    image = None
    frame_index = 0
    shown: list = []


def _video(spec: str, layout: str, keep_images: bool = False) -> Iterator[list[Observation]]:
    """Pose tracks of a video/camera, one group per frame with somebody in it; with ``keep_images`` every frame,
    as a `FrameGroup` (empty when nobody is there), for the overlay."""
    from pose.extract import iter_tracks

    src_spec: str | int = int(spec) if spec.isdigit() else spec
    # auto: one person posed on the full frame (what finds a side-view walker the people detector misses),
    # switching to detection + tracking for good once a second person shows up or the full frame fails
    for frame_obs in iter_tracks(src_spec, multi_person="auto", layout=layout):
        group = [Observation(int(obs.track_id), int(obs.frame_index), float(obs.timestamp_s),
                             np.asarray(obs.joints, np.float32), np.asarray(obs.valid, bool)) for obs in frame_obs]
        if keep_images:
            group = FrameGroup(group)
            group.image, group.frame_index = frame_obs.frame.image_bgr, int(frame_obs.frame.index)
            group.shown = [o for o in frame_obs if o.found and o.confirmed]
            yield group
        elif group:
            yield group


def check_source(spec: str, open_it: bool = False) -> None:
    """Fail fast (SourceError) on a source that cannot work, before any process is started. With ``open_it``
    the source is opened too: a recording must hold at least one track with 3D joints, a video file must decode
    a first frame, a camera must open (then it is released again for the producer)."""
    spec = str(spec)
    if spec == "synthetic" or spec.startswith("synthetic:"):
        parse_synthetic(spec)
        return
    if spec.endswith(".npz") and not Path(spec).is_file():
        raise SourceError(f"{spec}: no such recording")
    if not spec.endswith(".npz") and not spec.isdigit() and "://" not in spec and not Path(spec).exists():
        raise SourceError(f"{spec}: no such video file or camera (use a camera index such as 0, a video file, "
                          "a .npz recording or synthetic)")
    if not open_it:
        return
    if spec.endswith(".npz"):
        from pose.extract import load_tracks

        try:
            res = load_tracks(spec)
        except Exception as exc:  # noqa: BLE001 - the reader's own error, as one line naming the file
            raise SourceError(str(exc)) from None
        if not any(tr.joints and len(tr.frames) for tr in res.tracks):
            raise SourceError(f"{spec}: no skeleton tracks with 3D joints in this recording")
        return
    import cv2

    cap = cv2.VideoCapture(int(spec) if spec.isdigit() else spec)
    try:
        ok = cap.isOpened() and (spec.isdigit() or cap.read()[0])
    finally:
        cap.release()
    if not ok:
        what = "camera" if spec.isdigit() else "video (not a video file OpenCV can decode)"
        raise SourceError(f"{spec}: cannot open this {what}")


def has_images(spec: str) -> bool:
    """Whether a source has video frames to draw on (a video file or camera, not skeletons)."""
    spec = str(spec)
    return not (spec == "synthetic" or spec.startswith("synthetic:") or spec.endswith(".npz"))


def open_frames(spec: str, layout: str, fps: float,
                keep_images: bool = False) -> tuple[Iterator[list[Observation]], bool]:
    """A source spec as a stream of source frames (the observations of every track seen in one frame), and
    whether it must be paced to ``fps`` (recorded data). ``keep_images``: video frames come as `FrameGroup`s."""
    spec = str(spec)
    check_source(spec)
    if spec == "synthetic" or spec.startswith("synthetic:"):
        return _synthetic(spec, layout, fps), True
    if spec.endswith(".npz"):
        return _recorded(Path(spec), layout, fps), True
    return _video(spec, layout, keep_images), False


def open_observations(spec: str, layout: str, fps: float) -> tuple[Iterator[Observation], bool]:
    """Like `open_frames`, one observation at a time."""
    frames, paced = open_frames(spec, layout, fps)
    return (obs for group in frames for obs in group), paced


def run(cfg: StreamConfig, source: str, frames_connect: str, events_addr: str, control_addr: str | None,
        realtime: bool = True, track_offset: int = 0, keys=None, overlay: dict | None = None) -> int:
    """Stage main loop (own process): publish every source frame; exit 0 when the source ends.

    ``track_offset`` is added to every track id: a restarted producer's trackers start counting again, and
    their new tracks must not continue the windows and votes of the old ones.
    ``overlay`` ({"path": video or None, "show": bool}): draw every video frame with the names the supervisor
    sends (`stream.overlay.OverlaySink`, off the real-time path; a restarted producer writes ``path`` anew).
    """
    import zmq

    from stream.runtime import StageError, StageRuntime

    rt = StageRuntime("producer", cfg, events_addr, control_addr, keys, names=bool(overlay))
    try:
        push = rt.socket(zmq.PUSH, "frames", connect=frames_connect)
    except StageError as exc:
        return rt.fail(exc)
    push.setsockopt(zmq.SNDHWM, cfg.frames_hwm)
    push.setsockopt(zmq.LINGER, 1000)
    try:
        return publish(rt, push, cfg, source, realtime, track_offset, overlay)
    finally:
        push.close()
        rt.close()


def publish(rt, push, cfg: StreamConfig, source: str, realtime: bool = True, track_offset: int = 0,
            overlay: dict | None = None, camera: str = "") -> int:
    """Read ``source`` and send one `FrameMsg` per source frame on ``push`` (never blocking: a full queue or no
    connected peer drops the frame, counted ``dropped``). ``rt`` is the stage's `StageRuntime` (or a camera's
    `stream.cmd_camera.CameraRuntime`): counters, control, heartbeats. Returns the exit status."""
    import zmq

    from stream.messages import FrameMsg

    producer_id = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    rt.info.update(source=str(source), producer=producer_id)
    status = 0
    sink = None
    try:
        groups, paced = open_frames(source, cfg.layout, cfg.fps, keep_images=bool(overlay))
        if overlay:
            from stream.overlay import OverlaySink

            sink = OverlaySink(overlay.get("path"), overlay.get("show", False), fps=cfg.fps or 25.0)
        rt.settle()
        rt.state = "running"
        t0 = time.time()
        first_capture = None
        seq = 0
        for group in groups:
            if rt.stopping:
                break
            if sink is not None and isinstance(group, FrameGroup):
                names = {t - track_offset: v for t, v in rt.names.items() if t >= track_offset}
                sink.offer(group.image, group.shown, group.frame_index, names)
                rt.counters["overlay_dropped"] = sink.dropped
                if not group:
                    rt.check_control()
                    rt.tick()
                    continue
            if len(group) > cfg.max_tracks:  # a crowd beyond what the buses are sized for: keep the first ones
                rt.counters["tracks_dropped"] += len(group) - cfg.max_tracks
                group = group[: cfg.max_tracks]
            t_capture = group[0].t_capture
            if first_capture is None:
                first_capture = t_capture
            if paced and realtime:
                delay = t0 + (t_capture - first_capture) - time.time()
                if delay > 0:
                    end = time.time() + delay
                    while not rt.stopping and time.time() < end:
                        rt.check_control()
                        rt.tick()
                        time.sleep(min(0.005, max(0.0, end - time.time())))
            # one message per source frame: every track seen in it, one publish time (the latency origin)
            msg = FrameMsg(seq=seq, frame=group[0].frame, t_capture=t_capture, t_pub=time.time(),
                           tracks=[o.track + track_offset for o in group], joints=np.stack([o.joints for o in group]),
                           valid=np.stack([o.valid for o in group]), producer=producer_id,
                           labels=[o.label for o in group], camera=camera)
            seq += 1
            try:
                push.send_multipart(msg.to_frames(), flags=zmq.NOBLOCK)
                rt.counters["frames"] += 1
                rt.counters["skeletons"] += len(group)
            except zmq.Again:
                rt.counters["dropped"] += 1
            rt.check_control()
            rt.tick()
        if not rt.stopping:
            rt.state = "finished"
    except Exception as exc:  # noqa: BLE001 - a source failure is shown on the dashboard, then the stage exits
        rt.state = "error"
        rt.info["error"] = f"{type(exc).__name__}: {exc}"
        status = 1
    finally:
        if sink is not None:
            sink.close()
            if sink.error:
                rt.info["overlay"] = sink.error
        for _ in range(2):  # the final state must reach the supervisor
            rt.tick(force=True)
            time.sleep(0.05)
    return status
