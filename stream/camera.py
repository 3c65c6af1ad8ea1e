"""A remote camera (`cagereid camera`): the pose producer as its own program, feeding a `cagereid serve` anywhere.

It reads the source exactly as the live producer does (`stream.producer.publish`: one `FrameMsg` per source frame,
never blocking: frames are dropped, counted, while serve is away) and PUSHes the frames, named with the camera's
name, to serve's frames address. ZeroMQ reconnects by itself, so a camera outlives a serve restart and a serve
outlives a camera; ``ZMQ_IMMEDIATE`` keeps frames from queueing up while nobody is connected (no stale burst on
reconnect). With keys the connection is CURVE-encrypted and authenticated both ways: the camera holds its own key
pair and serve's public key, serve admits only the camera keys it was given. Without keys it connects to this
machine only (skeletons are biometric data: they never cross a network in clear).

What happens on the connection (connected, refused key, lost, back) is printed to stderr as it happens (a socket
monitor), and a progress line every ``status_every_s``.
"""
from __future__ import annotations

import signal
import sys
import time
from collections import defaultdict

from stream.config import StreamConfig
from stream.errors import StreamError

LOOPBACK = ("127.", "localhost", "[::1]", "::1")


def parse_address(text: str, what: str = "--connect") -> tuple[str, int]:
    """``HOST:PORT`` (or ``tcp://HOST:PORT``) -> (host, port); a one-line `StreamError` else."""
    t = str(text).strip()
    t = t.removeprefix("tcp://")
    host, sep, port = t.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise StreamError(f"{what} {text!r}: give HOST:PORT, e.g. 127.0.0.1:5555")
    return host, int(port)


def is_loopback(host: str) -> bool:
    h = host.strip("[]")
    if h == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


class CameraRuntime:
    """What `stream.producer.publish` needs from a runtime, for a camera process (no supervisor): counters, a
    stop flag (SIGINT/SIGTERM, ``duration``), connection events printed to stderr, a progress line now and then."""

    def __init__(self, name: str, monitor=None, say=None, status_every_s: float = 10.0,
                 duration: float = 0.0) -> None:
        self.name, self.monitor = name, monitor
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.counters: dict[str, float] = defaultdict(float)
        self.info: dict[str, str] = {}
        self.names: dict = {}
        self.state = "starting"
        self.stopping = False
        self.status_every_s, self.duration = status_every_s, duration
        self.started = time.time()
        self._last = time.time()
        self.connected = False
        self.refused = 0
        self.events: list[str] = []  # connection events so far (tests)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, *_) -> None:
        self.stopping = True

    def settle(self) -> None:
        pass

    def check_control(self) -> None:
        if self.duration and time.time() - self.started >= self.duration:
            self.stopping = True
        if self.monitor is None:
            return
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                ev = recv_monitor_message(self.monitor, flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            self._on_event(ev["event"], ev.get("value"), ev.get("endpoint", b""))

    def _on_event(self, event: int, value, endpoint: bytes) -> None:
        import zmq

        where = endpoint.decode(errors="replace") if isinstance(endpoint, bytes) else str(endpoint)
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.connected = True
            self._note("connected", f"{self.name}: connected to serve at {where}")
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            self.connected = False
            self.refused += 1
            self._note("refused", f"{self.name}: serve at {where} refused this camera's key (status {value}; is its "
                       "NAME.key in serve's --allow folder?); retrying")
        elif event in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
            self.connected = False
            self._note("handshake failed", f"{self.name}: handshake with {where} failed (wrong --server-key, or "
                       "serve runs with/without keys and this camera does not?); retrying")
        elif event == zmq.EVENT_DISCONNECTED and self.connected:
            self.connected = False
            self._note("lost", f"{self.name}: lost serve at {where}; frames are dropped until it is back")

    def _note(self, kind: str, text: str) -> None:
        if not self.events or self.events[-1] != kind:
            self.events.append(kind)
            self.say(text)

    def tick(self, force: bool = False) -> None:
        now = time.time()
        if self.status_every_s and (force or now - self._last >= self.status_every_s):
            self._last = now
            c = self.counters
            text = (f"{self.name}: {c['frames']:.0f} frames sent, {c['dropped']:.0f} dropped "
                    f"({'connected' if self.connected else 'not connected'})")
            if text != getattr(self, "_said", None):
                self._said = text
                self.say(text)


def run_camera(cfg: StreamConfig, source: str, connect: str, name: str, keys: tuple | None = None,
               realtime: bool = True, status_every_s: float = 10.0, duration: float = 0.0, say=None) -> int:
    """Publish ``source`` to serve at ``connect`` (HOST:PORT) as camera ``name``; returns the exit status (0 when
    the source ended or it was stopped). ``keys``: (camera `KeyPair`, serve's public key) or None (plain TCP, this
    machine only)."""
    import zmq

    from stream import security
    from stream.messages import check_camera, max_part_bytes
    from stream.producer import publish

    check_camera(name, "--name", allow_empty=False)
    host, port = parse_address(connect)
    if keys is None and not is_loopback(host):
        raise StreamError(f"--connect {connect}: without --keys/--server-key a camera connects to this machine only "
                          "(skeletons are biometric data; make keys with cagereid keys)")
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 1000)
    push.setsockopt(zmq.SNDHWM, cfg.frames_hwm)
    push.setsockopt(zmq.IMMEDIATE, 1)  # no queue towards a serve that is not there: drop (counted) instead
    push.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
    from pose.layouts import get_layout

    J = get_layout(cfg.layout).J
    max_part = max_part_bytes(cfg.max_tracks, 1, J)
    if keys is not None:
        kp, server_public = keys
        security.client(push, security.StageKeys(name, kp, {"frames": server_public}), "frames", max_part)
    else:
        push.maxmsgsize = max_part + security.TRANSPORT_OVERHEAD
    monitor = push.get_monitor_socket()
    rt = CameraRuntime(name, monitor, say, status_every_s, duration)
    push.connect(f"tcp://{host}:{port}")
    try:
        status = publish(rt, push, cfg, source, realtime=realtime, camera=name)
        if rt.info.get("error"):
            rt.say(f"{name}: source failed: {rt.info['error']}")
        return status
    finally:
        rt.check_control()
        rt.tick(force=True)
        push.disable_monitor()
        monitor.close(linger=0)
        push.close()
        ctx.term()
