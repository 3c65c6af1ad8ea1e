"""What every stage process shares: sockets to the supervisor, heartbeats with counters, clean shutdown.

A stage connects a PUB socket to the supervisor's events address (heartbeats, stats, decisions) and a SUB
socket to its control address ("stop"). `StageRuntime.tick()` publishes a `StatsMsg` every ``heartbeat_s``
with the stage's counters and per-second rates. SIGTERM/SIGINT set ``stopping``; loops poll with a timeout,
so they notice within ``poll_ms`` and close their sockets.
"""
from __future__ import annotations

import gc
import os
import signal
import time
from collections import defaultdict

import zmq

from stream.config import StreamConfig
from stream.messages import ControlMsg, MessageError, StatsMsg, decode


class StageRuntime:
    def __init__(self, name: str, cfg: StreamConfig, events_addr: str, control_addr: str | None) -> None:
        self.name, self.cfg = name, cfg
        self.ctx = zmq.Context()
        self.events = self.ctx.socket(zmq.PUB)
        self.events.setsockopt(zmq.SNDHWM, cfg.events_hwm)
        self.events.setsockopt(zmq.LINGER, 500)
        self.events.connect(events_addr)
        self.control = None
        if control_addr:
            self.control = self.ctx.socket(zmq.SUB)
            self.control.setsockopt(zmq.SUBSCRIBE, ControlMsg.TOPIC)
            self.control.setsockopt(zmq.LINGER, 0)
            self.control.connect(control_addr)
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
                return
            try:
                msg = decode(frames, expect=(ControlMsg,))
            except MessageError:
                self.counters["malformed"] += 1
                continue
            if msg.command == "stop":
                self.stopping = True

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
        self.ctx.term()
