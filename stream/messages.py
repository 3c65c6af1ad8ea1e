"""Every message of the live pipeline, as a dataclass with ``to_frames()`` / ``from_frames()``.

Wire format (ZeroMQ multipart, no pickle anywhere)::

    frame 0   topic, ASCII (b"frame", b"window", b"decision", b"stats", b"control")
    frame 1   JSON header: {"v": SCHEMA_VERSION, "arrays": [{"name", "dtype", "shape"}, ...], ...fields}
    frame 2.. one raw C-order buffer per entry of "arrays", in that order

``decode(frames)`` validates everything (topic, version, header fields and types, dtype whitelist, shape vs
byte count) and raises `MessageError` for anything malformed, so a stage counts and drops bad input instead of
crashing. Timestamps are ``time.time()`` seconds (stages on one machine; a remote camera's ``t_capture`` is its own
clock, ``t_pub`` is replaced by the windower's receive time, so latency never mixes two machines' clocks).

Several cameras (`cagereid serve`): frame, window and decision messages name their ``camera`` (`check_camera`:
1-64 letters, digits, ``_ . -``; ``""`` for the one-machine `cagereid live`); a track id is unique per camera only,
so every stage keys tracks by ``(camera, track)``.

>>> m = FrameMsg(seq=0, frame=0, t_capture=1.0, t_pub=1.0, tracks=[3], joints=np.zeros((1, 20, 3), np.float32))
>>> decode(m.to_frames()).tracks
[3]
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from stream.errors import StreamError

SCHEMA_VERSION = 3  # 2: frame and window messages carry every track of one source frame; 3: camera names
_DTYPES = {"float32", "float64", "bool", "int64", "uint8"}
_MAX_ELEMENTS = 1 << 20  # no legitimate message is bigger than this (a 64-window batch is ~25k values)
_MAX_HEADER = 64 * 1024
MAX_INT = 2**53  # JSON integers beyond this lose precision in floats (and `10**400` would overflow float())
MAX_TRACK = 2**31 - 1  # track ids are 0..MAX_TRACK (a restarted producer adds 100000 per restart)
MAX_TEXT = 256  # names, labels, identities, stage names
MAX_INFO = 4096  # one stats info value (an error message)
MAX_KEYS = 256  # counters / info entries in one stats message
MAX_TIME = 1e11  # timestamps are time.time() seconds (year ~5100)
STAGES = ("producer", "windower", "identify")
MAX_WORKERS = 16  # identify workers of one serve: "identify" (worker 0), "identify-1" .. "identify-15"
_WORKER = re.compile(r"identify-([1-9]|1[0-5])")
_CAMERA = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
STATES = ("starting", "ready", "running", "finished", "error")
COMMANDS = ("stop", "alive")  # "alive": the supervisor's heartbeat; a stage that stops hearing it exits


def max_part_bytes(max_tracks: int, f: int, J: int) -> int:
    """The largest part (header or array buffer) of a legal message for a stream of at most ``max_tracks``
    tracks per source frame, ``f``-frame windows and ``J`` joints: the bound every socket gets as
    ``ZMQ_MAXMSGSIZE`` (plus transport overhead), so a huge message is refused before it is buffered."""
    return max(_MAX_HEADER, max_tracks * max(f, 1) * J * 3 * 4)


class MessageError(StreamError):
    """A received message is malformed; the receiver counts it and drops it."""


def worker_name(k: int) -> str:
    """The stage name of identify worker ``k`` (0 = "identify", as with one worker)."""
    return "identify" if k == 0 else f"identify-{k}"


def is_stage(name: str) -> bool:
    return name in STAGES or bool(_WORKER.fullmatch(name))


def is_identify(name: str) -> bool:
    return name == "identify" or bool(_WORKER.fullmatch(name))


def check_camera(name: str, origin: str = "camera name", allow_empty: bool = True) -> str:
    """A camera name as it travels in messages: 1-64 letters, digits, ``_ . -`` (starting with a letter or digit);
    ``""`` (the one camera of `cagereid live`) where ``allow_empty``. `MessageError` (a `StreamError`) else."""
    if isinstance(name, str) and ((name == "" and allow_empty) or _CAMERA.fullmatch(name)):
        return name
    raise MessageError(f"{origin}: {str(name)[:80]!r} is not a camera name (1-64 letters, digits, _ . -)")


def _camera(head: dict) -> str:
    return check_camera(_get(head, "camera", str, hi=64), "header field 'camera'")


def _bool(head: dict, key: str) -> bool:
    if not isinstance(head.get(key), bool):
        raise MessageError(f"header field {key!r} needs true or false")
    return head[key]


def _array_frames(arrays: list[tuple[str, np.ndarray]]) -> tuple[list[dict], list[bytes]]:
    specs, buffers = [], []
    for name, a in arrays:
        a = np.ascontiguousarray(a)
        specs.append({"name": name, "dtype": a.dtype.name, "shape": list(a.shape)})
        buffers.append(a.tobytes())
    return specs, buffers


def _pack(topic: bytes, header: dict, arrays: list[tuple[str, np.ndarray]] = ()) -> list[bytes]:
    specs, buffers = _array_frames(list(arrays))
    head = {"v": SCHEMA_VERSION, "arrays": specs, **header}
    return [topic, json.dumps(head, separators=(",", ":")).encode()] + buffers


def _unpack(frames: list[bytes]) -> tuple[bytes, dict, dict[str, np.ndarray]]:
    if not isinstance(frames, (list, tuple)) or len(frames) < 2:
        raise MessageError("need at least a topic and a header frame")
    topic, raw = bytes(frames[0]), bytes(frames[1])
    if len(raw) > _MAX_HEADER:
        raise MessageError("header too large")
    try:
        head = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # bad UTF-8/JSON, a 5000-digit integer, nesting too deep
        raise MessageError("header is not JSON") from None
    if not isinstance(head, dict):
        raise MessageError("header is not a JSON object")
    if head.get("v") != SCHEMA_VERSION:
        raise MessageError(f"schema version {str(head.get('v'))[:20]}, expected {SCHEMA_VERSION}")
    specs = head.get("arrays", [])
    if not isinstance(specs, list) or len(specs) > 8:
        raise MessageError("bad array list")
    if len(specs) != len(frames) - 2:
        raise MessageError(f"header lists {len(specs)} arrays, got {len(frames) - 2} buffers")
    arrays = {}
    for spec, buf in zip(specs, frames[2:]):
        if not isinstance(spec, dict):
            raise MessageError("array spec is not an object")
        name, dtype, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
        if not isinstance(name, str) or not isinstance(dtype, str) or dtype not in _DTYPES:
            raise MessageError(f"bad array name/dtype {str(name)[:20]!r}/{str(dtype)[:20]!r}")
        if (not isinstance(shape, list) or len(shape) > 6
                or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s for s in shape)):
            raise MessageError(f"bad shape {str(shape)[:40]} for {name[:20]}")
        if any(s > _MAX_ELEMENTS for s in shape):
            raise MessageError(f"bad shape for {name}")
        n = math.prod(shape)
        if n > _MAX_ELEMENTS:
            raise MessageError(f"array {name} too large ({n} elements)")
        buf = bytes(buf)
        dt = np.dtype(dtype)
        if len(buf) != n * dt.itemsize:
            raise MessageError(f"array {name}: {len(buf)} bytes for shape {shape} {dtype}")
        arrays[name] = np.frombuffer(buf, dtype=dt).reshape(shape)
    return topic, head, arrays


def _check_value(key: str, value: Any, kind: type, lo: float | None = None, hi: float | None = None) -> Any:
    """``value`` as ``kind`` (int, float or str) within ``[lo, hi]`` (length for str), else `MessageError`.
    bool is not a number here; a float is finite; an int beyond `MAX_INT` is refused before any float()."""
    if kind is str:
        if not isinstance(value, str) or len(value) > (MAX_TEXT if hi is None else hi):
            raise MessageError(f"header field {key!r} needs a string of at most {hi or MAX_TEXT} characters")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise MessageError(f"header field {key!r} has type {type(value).__name__}, expected {kind.__name__}")
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise MessageError(f"header field {key!r} is out of range")
    value = kind(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise MessageError(f"header field {key!r} is not finite")
    lo = -MAX_INT if lo is None else lo
    hi = MAX_INT if hi is None else hi
    if not lo <= value <= hi:
        raise MessageError(f"header field {key!r} = {value!r} is outside {lo}..{hi}")
    return value


def _get(head: dict, key: str, kind: type, lo: float | None = None, hi: float | None = None) -> Any:
    """Header field ``key`` of type ``kind`` (int, float, str, dict or list); numbers within ``[lo, hi]``."""
    if key not in head:
        raise MessageError(f"header misses {key!r}")
    if kind in (dict, list):
        if not isinstance(head[key], kind):
            raise MessageError(f"header field {key!r} has type {type(head[key]).__name__}")
        return head[key]
    return _check_value(key, head[key], kind, lo, hi)


def _time(head: dict, key: str) -> float:
    return _get(head, key, float, 0.0, MAX_TIME)


def _list(head: dict, key: str, n: int, kind: type, lo: float | None = None, hi: float | None = None) -> list:
    """A header list of exactly ``n`` values of ``kind`` (bool is not an int here), each within range."""
    value = _get(head, key, list)
    if len(value) != n:
        raise MessageError(f"header field {key!r} needs {n} {kind.__name__} values")
    return [_check_value(key, v, kind, lo, hi) for v in value]


@dataclass
class FrameMsg:
    """One source frame: the skeleton of every track seen in it (producer -> windower).

    A camera frame goes out as one message, not one per person: fewer messages, fewer process wake-ups, and the
    windower emits that frame's windows together, so identify encodes them in one batch.
    """

    TOPIC: ClassVar[bytes] = b"frame"
    seq: int  # per-producer counter: gaps = frames lost on the way
    frame: int  # frame index in the source
    t_capture: float  # when the source delivered the frame
    t_pub: float  # when the producer sent it (latency is measured from here)
    tracks: list[int]  # (T,) track ids
    joints: np.ndarray  # (T, J, 3) float32, metres; NaN where not detected
    valid: np.ndarray | None = None  # (T, J) bool; None = where joints are finite
    producer: str = ""  # producer instance id (a restarted producer gets a new one)
    labels: list[str] | None = None  # (T,) ground truth names when the source knows them (synthetic demo), else ""
    camera: str = ""  # the camera's name (`cagereid camera --name`); "" for the one camera of `cagereid live`

    def __post_init__(self) -> None:
        if self.labels is None:
            self.labels = [""] * len(self.tracks)

    def to_frames(self) -> list[bytes]:
        joints = np.asarray(self.joints, np.float32)
        valid = np.isfinite(joints).all(-1) if self.valid is None else self.valid
        return _pack(self.TOPIC, {"seq": self.seq, "frame": self.frame, "t_capture": self.t_capture,
                                  "t_pub": self.t_pub, "tracks": [int(t) for t in self.tracks],
                                  "producer": self.producer, "labels": list(self.labels), "camera": self.camera},
                     [("joints", joints), ("valid", np.asarray(valid, bool))])

    @classmethod
    def from_head(cls, head: dict, arrays: dict) -> "FrameMsg":
        joints, valid = arrays.get("joints"), arrays.get("valid")
        if joints is None or joints.ndim != 3 or joints.shape[2] != 3 or joints.dtype != np.float32:
            raise MessageError("frame needs joints (T, J, 3) float32")
        if valid is None or valid.shape != joints.shape[:2] or valid.dtype != bool:
            raise MessageError("frame needs valid (T, J) bool")
        n = joints.shape[0]
        tracks = _list(head, "tracks", n, int, 0, MAX_TRACK)
        if len(set(tracks)) != n:
            raise MessageError("frame lists a track twice")
        return cls(seq=_get(head, "seq", int, 0), frame=_get(head, "frame", int, 0),
                   t_capture=_get(head, "t_capture", float, -MAX_TIME, MAX_TIME), t_pub=_time(head, "t_pub"),
                   tracks=tracks, joints=joints, valid=valid,
                   producer=_get(head, "producer", str), labels=_list(head, "labels", n, str), camera=_camera(head))


@dataclass
class Window:
    """f consecutive skeletons of one track (what the windower makes and identify encodes)."""

    track: int
    frame: int  # source frame index of the newest skeleton
    t_pub: float  # publish time of the newest frame (latency origin)
    window: np.ndarray  # (f, J, 3) float32, finite
    label: str = ""
    camera: str = ""


@dataclass
class WindowMsg:
    """The windows one source frame completed, one per track (windower -> identify)."""

    TOPIC: ClassVar[bytes] = b"window"
    frame: int  # source frame index
    t_pub: float  # publish time of that frame (latency origin)
    tracks: list[int]  # (K,)
    windows: np.ndarray  # (K, f, J, 3) float32, finite
    labels: list[str] | None = None  # (K,); None = all ""
    camera: str = ""  # the camera of that frame (one frame, one camera)

    def __post_init__(self) -> None:
        if self.labels is None:
            self.labels = [""] * len(self.tracks)

    @classmethod
    def of(cls, windows: list[Window]) -> "WindowMsg":
        if len({w.camera for w in windows}) > 1:
            raise ValueError("one window message holds the windows of one camera")
        return cls(frame=windows[-1].frame, t_pub=windows[-1].t_pub, tracks=[w.track for w in windows],
                   windows=np.stack([w.window for w in windows]), labels=[w.label for w in windows],
                   camera=windows[0].camera)

    def items(self) -> list[Window]:
        return [Window(t, self.frame, self.t_pub, w, lab, self.camera)
                for t, w, lab in zip(self.tracks, self.windows, self.labels)]

    def to_frames(self) -> list[bytes]:
        return _pack(self.TOPIC, {"frame": self.frame, "t_pub": self.t_pub, "tracks": [int(t) for t in self.tracks],
                                  "labels": list(self.labels), "camera": self.camera},
                     [("windows", np.asarray(self.windows, np.float32))])

    @classmethod
    def from_head(cls, head: dict, arrays: dict) -> "WindowMsg":
        w = arrays.get("windows")
        if w is None or w.ndim != 4 or w.shape[3] != 3 or w.dtype != np.float32 or not np.isfinite(w).all():
            raise MessageError("window message needs a finite (K, f, J, 3) float32 array")
        n = w.shape[0]
        tracks = _list(head, "tracks", n, int, 0, MAX_TRACK)
        if len(set(tracks)) != n:
            raise MessageError("window message lists a track twice")
        return cls(frame=_get(head, "frame", int, 0), t_pub=_time(head, "t_pub"),
                   tracks=tracks, windows=w, labels=_list(head, "labels", n, str), camera=_camera(head))


@dataclass
class DecisionMsg:
    """The current identity of one track after one more window: identify -> dashboard."""

    TOPIC: ClassVar[bytes] = b"decision"
    track: int
    identity: str  # a gallery name, "unknown", or "..." (pending: too few windows yet)
    confidence: float  # share of recent votes supporting `identity`
    windows: int  # windows of this track seen so far
    score: float  # match score of the newest window against its best person
    best: str  # best gallery person for the newest window (before voting), "" if the gallery is empty
    t_pub: float  # publish time of the newest frame of the newest window
    t_decided: float
    label: str = ""  # ground truth carried from the source, "" if unknown
    camera: str = ""  # the track's camera ("" with one camera): tracks are (camera, track)
    anonymous: bool = False  # `identity` is an anonymous visitor id (open world), not an enrolled name

    def to_frames(self) -> list[bytes]:
        head = {k: getattr(self, k) for k in ("track", "identity", "confidence", "windows", "score", "best",
                                               "t_pub", "t_decided", "label", "camera", "anonymous")}
        return _pack(self.TOPIC, head)

    @classmethod
    def from_head(cls, head: dict, arrays: dict) -> "DecisionMsg":
        return cls(track=_get(head, "track", int, 0, MAX_TRACK), identity=_get(head, "identity", str),
                   confidence=_get(head, "confidence", float, 0.0, 1.0), windows=_get(head, "windows", int, 0),
                   score=_get(head, "score", float, -1e6, 1e6), best=_get(head, "best", str),
                   t_pub=_time(head, "t_pub"), t_decided=_time(head, "t_decided"), label=_get(head, "label", str),
                   camera=_camera(head), anonymous=_bool(head, "anonymous"))


@dataclass
class StatsMsg:
    """Heartbeat + counters of one stage (every `heartbeat_s`): stage -> dashboard.

    ``state`` is "starting", "ready", "running", "finished" (source exhausted) or "error";
    ``counters`` maps names to numbers (fps, received, dropped, malformed, queue, ...);
    ``info`` carries small strings (bound address, model fingerprint, error message).
    """

    TOPIC: ClassVar[bytes] = b"stats"
    stage: str
    pid: int
    state: str
    t: float
    counters: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def to_frames(self) -> list[bytes]:
        return _pack(self.TOPIC, {"stage": self.stage, "pid": self.pid, "state": self.state, "t": self.t,
                                  "counters": self.counters, "info": self.info})

    @classmethod
    def from_head(cls, head: dict, arrays: dict) -> "StatsMsg":
        counters, info = _get(head, "counters", dict), _get(head, "info", dict)
        if len(counters) > MAX_KEYS or len(info) > MAX_KEYS or any(len(k) > MAX_TEXT for k in [*counters, *info]):
            raise MessageError("stats carry too many or too long keys")
        counters = {k: _check_value(f"counters.{k[:20]}", v, float, -1e15, 1e15) for k, v in counters.items()}
        info = {k: _check_value(f"info.{k[:20]}", v, str, hi=MAX_INFO) for k, v in info.items()}
        stage, state = _get(head, "stage", str), _get(head, "state", str)
        if not is_stage(stage) or state not in STATES:
            raise MessageError(f"unknown stage/state {stage[:20]!r}/{state[:20]!r}")
        return cls(stage=stage, pid=_get(head, "pid", int, 1, 2**31), state=state, t=_time(head, "t"),
                   counters=counters, info=info)


@dataclass
class ControlMsg:
    """A command from the supervisor to every stage ("stop")."""

    TOPIC: ClassVar[bytes] = b"control"
    command: str

    def to_frames(self) -> list[bytes]:
        return _pack(self.TOPIC, {"command": self.command})

    @classmethod
    def from_head(cls, head: dict, arrays: dict) -> "ControlMsg":
        command = _get(head, "command", str)
        if command not in COMMANDS:
            raise MessageError(f"unknown control command {command[:20]!r}")
        return cls(command=command)


@dataclass
class NamesMsg:
    """The current identity of every decided track, for the live overlay: supervisor -> producer (on the control
    bus, sent only when an overlay is on). ``names[track] = (identity, confidence)``."""

    TOPIC: ClassVar[bytes] = b"names"
    MAX: ClassVar[int] = 1024  # tracks in one message (the newest decisions win)
    names: dict[int, tuple[str, float]]

    def to_frames(self) -> list[bytes]:
        items = list(self.names.items())[-self.MAX:]
        return _pack(self.TOPIC, {"tracks": [int(t) for t, _ in items],
                                  "identities": [str(n)[:MAX_TEXT] for _, (n, _c) in items],
                                  "confidence": [float(c) for _, (_n, c) in items]})

    @classmethod
    def from_head(cls, head: dict, arrays: dict) -> "NamesMsg":
        n = len(_get(head, "tracks", list))
        if n > cls.MAX:
            raise MessageError(f"names message with {n} tracks (at most {cls.MAX})")
        tracks = _list(head, "tracks", n, int, 0, MAX_TRACK)
        names = _list(head, "identities", n, str)
        conf = _list(head, "confidence", n, float, 0.0, 1.0)
        return cls(names={t: (x, c) for t, x, c in zip(tracks, names, conf)})


MESSAGES = {cls.TOPIC: cls for cls in (FrameMsg, WindowMsg, DecisionMsg, StatsMsg, ControlMsg, NamesMsg)}


def decode(frames: list[bytes], expect: tuple[type, ...] | None = None):
    """Parse and validate a multipart message; raise `MessageError` if anything is off."""
    topic, head, arrays = _unpack(frames)
    cls = MESSAGES.get(topic)
    if cls is None:
        raise MessageError(f"unknown topic {topic[:20]!r}")
    if expect and cls not in expect:
        raise MessageError(f"unexpected {topic.decode(errors='replace')} message")
    if any(not isinstance(k, str) for k in head):  # JSON object keys are always strings; belt and braces
        raise MessageError("bad header keys")
    return cls.from_head(head, arrays)
