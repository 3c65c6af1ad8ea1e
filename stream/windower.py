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

Several cameras (`cagereid serve`): every camera's PUSH socket connects to the one frames address; tracks are keyed
by ``(camera, track)``. A frame from a camera's long-lived key must carry that key's camera name (else
``camera_mismatch``). When a camera's producer instance changes (the camera restarted or reconnected) its open
tracks end and its new track ids get a new epoch (``+ 100000 x epoch``), so a new walker never continues an old
track's votes. With several identify workers a track's windows always go to the same one
(`worker_of`: CRC32 of camera and track, modulo the worker count). Per camera it reports frames, tracks and the
seconds since its last frame (``cam.NAME.frames`` / ``.tracks`` / ``.age``), and the keys its ZAP handler refused.
"""
from __future__ import annotations

import time
import zlib
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from cages.windows import DEFAULT_POLICY, MissingJoints
from stream.config import StreamConfig
from stream.messages import MAX_TRACK, FrameMsg, MessageError, Window, WindowMsg, decode

EPOCH = 100000  # track id offset per camera restart (as a restarted `live` producer)
MAX_CAMERA_STATS = 40  # cameras listed in one stats message (4 entries each; a stats message holds 256)
CLOCK_SKEW_S = 2.0  # a frame published further away than this from the windower's clock gets its receive time


def worker_of(camera: str, track: int, workers: int) -> int:
    """The identify worker of a track: stable across processes and restarts (not Python's salted hash)."""
    return 0 if workers <= 1 else zlib.crc32(f"{camera}/{track}".encode()) % workers


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
        self.tracks: dict[tuple[str, int], TrackBuffer] = {}  # (camera, track) -> buffer
        self.incomplete = 0
        self.J = J  # joints per skeleton: the model's layout (live); None = fixed by the first frame (offline)
        self.missing = missing_joints(layout, policy)
        self.producers: dict[str, str] = {}  # camera -> its current producer instance
        self.epoch: dict[str, int] = {}  # camera -> restarts seen (renumbering)
        self.camera_frames: dict[str, int] = {}
        self.camera_seen: dict[str, float] = {}
        self._rate_at, self._rate_frames, self.camera_fps = 0.0, {}, {}

    def add(self, msg: FrameMsg, now: float) -> list[Window]:
        """Every track of one source frame; returns the windows it completed (in track order).

        Raises `MessageError` (nothing changed) when the skeletons have another joint count than before.
        """
        J = msg.joints.shape[1]
        if self.J is None:
            self.J = J
        elif J != self.J:
            raise MessageError(f"frame has {J} joints per skeleton, the stream has {self.J}")
        cam = msg.camera
        self.camera_frames[cam] = self.camera_frames.get(cam, 0) + 1
        self.camera_seen[cam] = now
        out = []
        for k, track in enumerate(msg.tracks):
            win = self.add_skeleton(track, msg.frame, msg.t_pub, msg.joints[k], msg.valid[k], msg.labels[k], now, cam)
            if win is not None:
                out.append(win)
        return out

    def receive(self, frames: list[bytes], now: float, max_tracks: int, peer: str = "",
                cameras: frozenset = frozenset(), serve: bool = False) -> tuple[FrameMsg, list[Window]]:
        """One message off the wire: decode, check, add. Raises `MessageError` for anything that is not a frame
        this stream can take (and then nothing changed).

        ``peer``: the name the sender's key was admitted under; a camera key (in ``cameras``) may only send frames
        of its own camera. ``serve``: frames must name their camera, track ids are renumbered per camera epoch,
        and a publish time off the local clock by more than `CLOCK_SKEW_S` becomes the receive time."""
        msg = decode(frames, expect=(FrameMsg,))
        if len(msg.tracks) > max_tracks:
            raise MessageError(f"{len(msg.tracks)} tracks in one frame (max_tracks {max_tracks})")
        if peer in cameras and msg.camera != peer:
            raise MessageError(f"the key of camera {peer!r} sent frames of camera {msg.camera!r}")
        if serve:
            if not msg.camera:
                raise MessageError("frames sent to serve must name their camera")
            if not 0.0 <= now - msg.t_pub <= CLOCK_SKEW_S:
                msg.t_pub = now
            self._renumber(msg)
        return msg, self.add(msg, now)

    def _renumber(self, msg: FrameMsg) -> None:
        cam = msg.camera
        if self.producers.get(cam) != msg.producer:
            if cam in self.producers:  # the camera restarted or reconnected: its open tracks end
                self.epoch[cam] = self.epoch.get(cam, 0) + 1
                for key in [k for k in self.tracks if k[0] == cam]:
                    del self.tracks[key]
            self.producers[cam] = msg.producer
        off = EPOCH * self.epoch.get(cam, 0)
        if off:
            msg.tracks = [(t + off) % (MAX_TRACK + 1) for t in msg.tracks]

    def add_skeleton(self, track: int, frame: int, t_pub: float, joints: np.ndarray, valid: np.ndarray,
                     label: str, now: float, camera: str = "") -> Window | None:
        key = (camera, track)
        buf = self.tracks.get(key)
        if buf is None or (buf.frames and now - buf.last_seen > self.timeout):
            buf = self.tracks[key] = TrackBuffer(self.f, since_emit=self.stride - 1)
        buf.push(joints, valid, now, self.missing)
        if len(buf.frames) < self.f or buf.since_emit < self.stride:
            return None
        buf.since_emit = 0
        window = np.stack(buf.frames)  # (f, J, 3)
        if not np.isfinite(window).all():
            self.incomplete += 1
            return None
        return Window(track=track, frame=frame, t_pub=t_pub, window=window, label=label, camera=camera)

    def expire(self, now: float) -> None:
        for track in [t for t, b in self.tracks.items() if now - b.last_seen > self.timeout]:
            del self.tracks[track]

    def camera_gauges(self, now: float) -> dict[str, float]:
        """``cam.NAME.frames`` / ``.tracks`` / ``.age`` of the most recently heard cameras (serve's dashboard)."""
        out: dict[str, float] = {}
        tracks: dict[str, int] = {}
        for cam, _ in self.tracks:
            tracks[cam] = tracks.get(cam, 0) + 1
        if now - self._rate_at >= 1.0:  # frames/s per camera, over the last second or so
            dt = now - self._rate_at
            self.camera_fps = {c: (n - self._rate_frames.get(c, 0)) / dt for c, n in self.camera_frames.items()}
            self._rate_at, self._rate_frames = now, dict(self.camera_frames)
        recent = sorted(self.camera_seen, key=lambda c: -self.camera_seen[c])[:MAX_CAMERA_STATS]
        for cam in recent:
            if not cam:
                continue
            out[f"cam.{cam}.frames"] = float(self.camera_frames.get(cam, 0))
            out[f"cam.{cam}.tracks"] = float(tracks.get(cam, 0))
            out[f"cam.{cam}.age"] = round(now - self.camera_seen[cam], 2)
            out[f"cam.{cam}.fps"] = round(self.camera_fps.get(cam, 0.0), 1)
        return out


def run(cfg: StreamConfig, f: int, J: int, frames_bind: str, windows_connect: str | list[str], events_addr: str,
        control_addr: str | None, keys=None, serve: bool = False) -> int:
    """Stage main loop (runs in its own process). ``frames_bind`` may use port 0 (the address it got is reported
    in info). Skeletons must have ``J`` joints (the model's layout); other frames are malformed.
    ``windows_connect``: one identify address, or one per identify worker (windows routed by `worker_of`).
    ``serve``: frames come from named cameras (`Windower.receive`)."""
    import zmq

    from stream.messages import max_part_bytes
    from stream.runtime import StageError, StageRuntime
    from stream.security import peer_of

    rt = StageRuntime("windower", cfg, events_addr, control_addr, keys)
    targets = [windows_connect] if isinstance(windows_connect, str) else list(windows_connect)
    try:
        pull = rt.socket(zmq.PULL, "frames", bind=frames_bind, max_part=max_part_bytes(cfg.max_tracks, 1, J))
        pushes = [rt.socket(zmq.PUSH, "windows", connect=addr) for addr in targets]
    except StageError as exc:
        return rt.fail(exc)
    pull.setsockopt(zmq.RCVHWM, cfg.frames_hwm)
    for push in pushes:
        push.setsockopt(zmq.SNDHWM, cfg.windows_hwm)
    rt.info.update(address=rt.bound_address(pull), f=str(f), stride=str(cfg.stride), workers=str(len(pushes)))
    cameras = keys.cameras if keys is not None else frozenset()
    w = Windower(f, cfg.stride, cfg.track_timeout_s, J=J, layout=cfg.layout)
    last_seq: dict[tuple[str, str], int] = {}
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
                    frames = pull.recv_multipart(flags=zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                n += 1
                peer = peer_of(frames[0]) if cameras else ""
                try:
                    msg, out = w.receive([fr.bytes for fr in frames], now, cfg.max_tracks, peer, cameras, serve)
                except MessageError as exc:
                    rt.counters["camera_mismatch" if "the key of camera" in str(exc) else "malformed"] += 1
                    continue
                rt.counters["frames"] += 1
                key = (msg.camera, msg.producer)
                prev = last_seq.get(key)
                if prev is not None and msg.seq > prev + 1:
                    rt.counters["frames_lost"] += msg.seq - prev - 1
                last_seq[key] = msg.seq
                rt.counters["skeletons"] += len(msg.tracks)
                if not out:
                    continue
                groups: dict[int, list[Window]] = {}
                for win in out:
                    groups.setdefault(worker_of(win.camera, win.track, len(pushes)), []).append(win)
                for k, wins in groups.items():
                    try:  # the frame's windows travel together: identify encodes them as one batch
                        pushes[k].send_multipart(WindowMsg.of(wins).to_frames(), flags=zmq.NOBLOCK)
                        rt.counters["windows"] += len(wins)
                    except zmq.Again:
                        rt.counters["windows_dropped"] += len(wins)
            rt.gauges.update(queue=float(n), tracks=float(len(w.tracks)), incomplete=float(w.incomplete))
            if serve:
                for k in [k for k in rt.gauges if k.startswith("cam.")]:
                    del rt.gauges[k]
                rt.gauges.update(w.camera_gauges(now))
                if rt.auth is not None:
                    rt.gauges.update(refused_handshakes=float(rt.auth.rejected),
                                     refused_keys=float(len(rt.auth.refused_keys)))
                if len(last_seq) > 4 * MAX_CAMERA_STATS:  # old producer instances of restarted cameras
                    for key in list(last_seq)[: len(last_seq) // 2]:
                        del last_seq[key]
            w.expire(now)
            rt.check_control()
            rt.tick()
    finally:
        pull.close()
        for push in pushes:
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
