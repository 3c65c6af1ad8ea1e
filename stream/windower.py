"""Window stage: keeps a sliding window of the last f skeletons of every track and emits complete windows.

Binds a PULL socket (producers connect their PUSH sockets, so a restarted producer simply reconnects) and
connects a PUSH socket to the identify stage. A window ``(f, J, 3)`` leaves every ``stride`` new frames
once a track has ``f`` frames; the windows one source frame completes leave together in one `WindowMsg`.
Joints a frame misses (NaN / not valid) are filled by `cages.windows.MissingJoints` for the stream's layout, the
rule offline windows use too (default ``mirror``: the other side's twin reflected about the body's sagittal
plane, else the joint's last filled position in that track, else the root); a window that still has a gap (no
root) is not emitted (counted as ``incomplete``). Malformed messages (and frames whose
joint count differs from the stream's) are counted and dropped; a full downstream queue drops the frame's
windows (counted per window).
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from cages.windows import DEFAULT_POLICY, MissingJoints
from stream.config import StreamConfig
from stream.messages import FrameMsg, MessageError, Window, WindowMsg, decode


@dataclass
class TrackBuffer:
    f: int
    frames: deque = field(default_factory=deque)  # (J, 3) float32 arrays, newest last
    last_pos: np.ndarray | None = None  # (J, 3) the last filled frame (NaN = never filled)
    since_emit: int = 0
    last_seen: float = 0.0

    def push(self, joints: np.ndarray, valid: np.ndarray, now: float, missing: MissingJoints) -> None:
        ok = valid & np.isfinite(joints).all(1)
        if ok.all():  # frames are only read (np.stack makes each window's own copy): a read-only array, as
            pos = joints if not joints.flags.writeable else joints.copy()  # decoded messages give, is kept as is
        else:
            pos = missing.fill_frame(joints, ok, self.last_pos)
        self.last_pos = pos = np.asarray(pos, np.float32)
        self.frames.append(pos)
        while len(self.frames) > self.f:
            self.frames.popleft()
        self.since_emit += 1
        self.last_seen = now


def missing_joints(layout: str | None, policy: str = DEFAULT_POLICY) -> MissingJoints:
    """The fill rule for frames of ``layout`` (None or unknown: the last filled position only)."""
    if layout is None:
        return MissingJoints("hold")
    from pose.layouts import LayoutError, get_layout

    try:
        return MissingJoints.for_layout(get_layout(layout), policy)
    except LayoutError:
        return MissingJoints("hold")


class Windower:
    """The pure part of the stage (no sockets): frames in, windows out."""

    def __init__(self, f: int, stride: int, track_timeout_s: float, J: int | None = None, layout: str | None = None,
                 policy: str = DEFAULT_POLICY) -> None:
        self.f, self.stride, self.timeout = f, stride, track_timeout_s
        self.tracks: dict[int, TrackBuffer] = {}
        self.incomplete = 0
        self.J = J  # joints per skeleton: the model's layout (live); None = fixed by the first frame (offline)
        self.missing = missing_joints(layout, policy)

    def add(self, msg: FrameMsg, now: float) -> list[Window]:
        """Every track of one source frame; returns the windows it completed (in track order).

        Raises `MessageError` (nothing changed) when the skeletons have another joint count than before.
        """
        J = msg.joints.shape[1]
        if self.J is None:
            self.J = J
        elif J != self.J:
            raise MessageError(f"frame has {J} joints per skeleton, the stream has {self.J}")
        out = []
        for k, track in enumerate(msg.tracks):
            win = self.add_skeleton(track, msg.frame, msg.t_pub, msg.joints[k], msg.valid[k], msg.labels[k], now)
            if win is not None:
                out.append(win)
        return out

    def receive(self, frames: list[bytes], now: float, max_tracks: int) -> tuple[FrameMsg, list[Window]]:
        """One message off the wire: decode, check, add. Raises `MessageError` for anything that is not a frame
        this stream can take (and then nothing changed)."""
        msg = decode(frames, expect=(FrameMsg,))
        if len(msg.tracks) > max_tracks:
            raise MessageError(f"{len(msg.tracks)} tracks in one frame (max_tracks {max_tracks})")
        return msg, self.add(msg, now)

    def add_skeleton(self, track: int, frame: int, t_pub: float, joints: np.ndarray, valid: np.ndarray,
                     label: str, now: float) -> Window | None:
        buf = self.tracks.get(track)
        if buf is None or (buf.frames and now - buf.last_seen > self.timeout):
            buf = self.tracks[track] = TrackBuffer(self.f, since_emit=self.stride - 1)
        buf.push(joints, valid, now, self.missing)
        if len(buf.frames) < self.f or buf.since_emit < self.stride:
            return None
        buf.since_emit = 0
        window = np.stack(buf.frames)  # (f, J, 3)
        if not np.isfinite(window).all():
            self.incomplete += 1
            return None
        return Window(track=track, frame=frame, t_pub=t_pub, window=window, label=label)

    def expire(self, now: float) -> None:
        for track in [t for t, b in self.tracks.items() if now - b.last_seen > self.timeout]:
            del self.tracks[track]


def run(cfg: StreamConfig, f: int, J: int, frames_bind: str, windows_connect: str, events_addr: str,
        control_addr: str | None, keys=None) -> int:
    """Stage main loop (runs in its own process). ``frames_bind`` may use port 0 (the address it got is reported
    in info). Skeletons must have ``J`` joints (the model's layout); other frames are malformed."""
    import zmq

    from stream.messages import max_part_bytes
    from stream.runtime import StageError, StageRuntime

    rt = StageRuntime("windower", cfg, events_addr, control_addr, keys)
    try:
        pull = rt.socket(zmq.PULL, "frames", bind=frames_bind, max_part=max_part_bytes(cfg.max_tracks, 1, J))
        push = rt.socket(zmq.PUSH, "windows", connect=windows_connect)
    except StageError as exc:
        return rt.fail(exc)
    pull.setsockopt(zmq.RCVHWM, cfg.frames_hwm)
    push.setsockopt(zmq.SNDHWM, cfg.windows_hwm)
    rt.info.update(address=rt.bound_address(pull), f=str(f), stride=str(cfg.stride))
    w = Windower(f, cfg.stride, cfg.track_timeout_s, J=J, layout=cfg.layout)
    last_seq: dict[str, int] = {}
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    rt.settle()
    rt.state = "running"
    try:
        while not rt.stopping:
            events = dict(poller.poll(cfg.poll_ms))
            now = time.time()
            n = 0
            while pull in events and n < 10 * cfg.frames_hwm:
                try:
                    frames = pull.recv_multipart(flags=zmq.NOBLOCK)
                except zmq.Again:
                    break
                n += 1
                try:
                    msg, out = w.receive(frames, now, cfg.max_tracks)
                except MessageError:
                    rt.counters["malformed"] += 1
                    continue
                rt.counters["frames"] += 1
                prev = last_seq.get(msg.producer)
                if prev is not None and msg.seq > prev + 1:
                    rt.counters["frames_lost"] += msg.seq - prev - 1
                last_seq[msg.producer] = msg.seq
                rt.counters["skeletons"] += len(msg.tracks)
                if not out:
                    continue
                try:  # the frame's windows travel together: identify encodes them as one batch
                    push.send_multipart(WindowMsg.of(out).to_frames(), flags=zmq.NOBLOCK)
                    rt.counters["windows"] += len(out)
                except zmq.Again:
                    rt.counters["windows_dropped"] += len(out)
            rt.gauges.update(queue=float(n), tracks=float(len(w.tracks)), incomplete=float(w.incomplete))
            w.expire(now)
            rt.check_control()
            rt.tick()
    finally:
        pull.close()
        push.close()
        rt.close()
    return 0


def windows_of_source(observations, f: int, stride: int, track: int | None = None,
                      max_seconds: float | None = None, layout: str | None = None) -> dict[int, list[np.ndarray]]:
    """Offline use of the same windowing as the live stage: ``{track: [(f, J, 3) windows]}``.

    ``observations`` yields `stream.producer.Observation`s (enrolment reads a file, a video or a camera) of
    ``layout`` (the model's: it decides how missing joints are filled).
    """
    w = Windower(f, stride, track_timeout_s=float("inf"), layout=layout)
    out: dict[int, list[np.ndarray]] = {}
    first = None
    for obs in observations:
        if track is not None and obs.track != track:
            continue
        first = obs.t_capture if first is None else first
        if max_seconds is not None and obs.t_capture - first > max_seconds:
            break
        win = w.add_skeleton(obs.track, obs.frame, 0.0, np.asarray(obs.joints, np.float32),
                             np.asarray(obs.valid, bool), obs.label, now=obs.t_capture)
        if win is not None:
            out.setdefault(obs.track, []).append(win.window)
    return out
