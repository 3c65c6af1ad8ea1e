"""What every stage process shares: sockets to the supervisor, heartbeats with counters, clean shutdown.

A stage connects a PUB socket to the supervisor's events address (heartbeats, stats, decisions) and a SUB
socket to its control address ("stop", and "alive" every ``heartbeat_s``). `StageRuntime.tick()` publishes a
`StatsMsg` every ``heartbeat_s`` with the stage's counters and per-second rates. SIGTERM/SIGINT set
``stopping``; loops poll with a timeout, so they notice within ``poll_ms`` and close their sockets.

Every socket is made by `StageRuntime.socket`: CURVE keys of the run (`stream.security`), a ZAP handler in a
stage that binds, and ``ZMQ_MAXMSGSIZE``. A stage never outlives its supervisor: the parent-death signal
(`die_with_parent`, SIGTERM when the supervisor process ends, even by SIGKILL) and, as a fallback, a stage that
has not heard the supervisor's "alive" for ``orphan_timeout_s`` stops by itself.
"""
from __future__ import annotations

import gc
import os
import signal
import time
from collections import defaultdict

import zmq

from stream import security
from stream.config import StreamConfig
from stream.errors import StreamError
from stream.messages import _MAX_HEADER, ControlMsg, MessageError, NamesMsg, StatsMsg, decode


class StageError(StreamError):
    """A stage cannot start (address in use, model unreadable): reported to the supervisor, which stops."""


def die_with_parent(supervisor_pid: int | None) -> None:
    """Linux: ask the kernel to send SIGTERM to this process when its parent dies (the fork server, which exits
    with the supervisor), then make sure neither died before the request (exit at once if so). A no-op
    elsewhere (the control-channel heartbeat still stops an orphan)."""
    import sys

    if not supervisor_pid or not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    try:
        os.kill(supervisor_pid, 0)
    except ProcessLookupError:
        os._exit(0)
    except PermissionError:
        pass
    if os.getppid() != parent:
        os._exit(0)


class StageRuntime:
    def __init__(self, name: str, cfg: StreamConfig, events_addr: str, control_addr: str | None,
                 keys: security.StageKeys | None = None, names: bool = False) -> None:
        self.name, self.cfg, self.keys = name, cfg, keys
        self.ctx = zmq.Context()
        self.auth = security.Authenticator(self.ctx, keys.allow) if keys is not None and keys.server else None
        self.events = self.socket(zmq.PUB, "events", connect=events_addr)
        self.events.setsockopt(zmq.SNDHWM, cfg.events_hwm)
        self.events.setsockopt(zmq.LINGER, 500)
        self.control = None
        if control_addr:
            self.control = self.socket(zmq.SUB, "control", connect=control_addr)
            self.control.setsockopt(zmq.SUBSCRIBE, ControlMsg.TOPIC)
            if names:  # the live overlay: the supervisor's NamesMsg (track -> identity, confidence)
                self.control.setsockopt(zmq.SUBSCRIBE, NamesMsg.TOPIC)
        self.names: dict[int, tuple[str, float]] = {}
        self.last_heard = time.time()  # the supervisor's last control message ("alive" / "stop")
        self.counters: dict[str, float] = defaultdict(float)
        self.gauges: dict[str, float] = {}
        self.info: dict[str, str] = {}
        self.state = "starting"
        self.stopping = False
        self._last_beat = 0.0
        self._last_counts: dict[str, float] = {}
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, *_: object) -> None:
        self.stopping = True

    def socket(self, kind: int, bus: str, bind: str | None = None, connect: str | None = None,
               max_part: int = _MAX_HEADER) -> zmq.Socket:
        """A socket on ``bus`` with the run's CURVE keys and ``ZMQ_MAXMSGSIZE`` (``max_part`` + overhead), bound
        or connected. Binding to port 0 picks a free port (`bound_address`). An address in use is a `StageError`."""
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            (security.serve if bind else security.client)(sock, self.keys, bus, max_part)
        else:
            sock.maxmsgsize = max_part + security.TRANSPORT_OVERHEAD
        try:
            if bind:
                host, port = bind.rsplit(":", 1)
                if port == "0":
                    sock.bind_to_random_port(host)
                else:
                    sock.bind(bind)
            else:
                sock.connect(connect)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise StageError(f"{self.name}: cannot {'bind' if bind else 'connect'} {bind or connect} ({exc})") from None
        return sock

    @staticmethod
    def bound_address(sock: zmq.Socket) -> str:
        return sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def fail(self, exc: BaseException) -> int:
        """Report a start-up failure to the supervisor (state "error" + message), close, return exit status 1."""
        self.state = "error"
        self.info["error"] = str(exc) if isinstance(exc, StreamError) else f"{type(exc).__name__}: {exc}"
        for _ in range(4):
            self.tick(force=True)
            time.sleep(self.cfg.heartbeat_s / 2)
        self.close()
        return 1

    def settle(self) -> None:
        """Call once set up (imports, model, sockets): the objects that exist now live as long as the stage, so
        the garbage collector stops scanning them. A full collection of a stage with torch loaded otherwise takes
        ~70 ms here, a latency spike whenever it happens to run mid-stream."""
        gc.collect()
        gc.freeze()

    def send_event(self, msg) -> None:
        try:
            self.events.send_multipart(msg.to_frames(), flags=zmq.NOBLOCK)
        except zmq.Again:
            self.counters["events_dropped"] += 1

    def check_control(self) -> None:
        if self.control is None:
            return
        while True:
            try:
                frames = self.control.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                msg = decode(frames, expect=(ControlMsg, NamesMsg))
            except MessageError:
                self.counters["malformed"] += 1
                continue
            self.last_heard = time.time()
            if isinstance(msg, NamesMsg):
                self.names = msg.names
                continue
            if msg.command == "stop":
                self.stopping = True
        if time.time() - self.last_heard > self.cfg.orphan_timeout_s:
            self.stopping = True  # the supervisor is gone (or hung): an orphan must not keep its ports
            self.info["stopped"] = f"no word from the supervisor for {self.cfg.orphan_timeout_s:g}s"

    def tick(self, force: bool = False) -> None:
        """Publish a heartbeat when due: counters, rates (``<name>_per_s``) and gauges."""
        now = time.time()
        if not force and now - self._last_beat < self.cfg.heartbeat_s:
            return
        dt = max(now - self._last_beat, 1e-6) if self._last_beat else None
        out = dict(self.counters)
        for key, value in self.counters.items():
            if dt is not None:
                out[f"{key}_per_s"] = (value - self._last_counts.get(key, 0.0)) / dt
        out.update(self.gauges)
        self._last_counts = dict(self.counters)
        self._last_beat = now
        self.send_event(StatsMsg(stage=self.name, pid=os.getpid(), state=self.state, t=now,
                                 counters=out, info=dict(self.info)))

    def close(self) -> None:
        self.tick(force=True)
        self.events.close(linger=500)
        if self.control is not None:
            self.control.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
        self.ctx.term()
