"""Supervisor: starts the stages as processes, collects their events, restarts the ones that die.

Topology (every arrow a ZeroMQ socket pair; the binding side is the one that is never restarted first)::

    producer --PUSH--> [PULL bind] windower --PUSH--> [PULL bind] identify
        \\                  |                               |
         `---- PUB ---------+------------ PUB --------------+----> [SUB bind] supervisor (events: stats,
                                                                     heartbeats, decisions) -> dashboard
    supervisor [PUB bind control] ---> SUB in every stage ("stop")

Ports left at 0 in `StreamConfig` are chosen once at start-up and kept, so a restarted stage binds or
connects to the same address and its peers reconnect. Start-up is a handshake, not a sleep: identify and
windower start together; the producer starts once both report "running" on the events bus.
"""
from __future__ import annotations

import multiprocessing as mp
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from stream.config import StreamConfig
from stream.dashboard import DashboardState, StageRow
from stream.errors import StreamError
from stream.messages import ControlMsg, DecisionMsg, MessageError, StatsMsg, decode

STAGES = ("identify", "windower", "producer")


def _stage_main(name: str, kwargs: dict) -> int:
    """Process entry point (importable, so the spawn start method can find it)."""
    import importlib
    import os
    import sys

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mod = importlib.import_module(f"stream.{name}")
    sys.exit(mod.run(**kwargs))


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class StageProc:
    name: str
    kwargs: dict
    proc: mp.process.BaseProcess | None = None
    restarts: int = 0
    died_at: float = 0.0
    finished: bool = False


@dataclass
class Pipeline:
    cfg: StreamConfig
    source: str
    model: str | None = None
    gallery: str | Path | None = None
    realtime: bool = True
    restart: bool = True
    state: DashboardState = field(default_factory=DashboardState)

    def __post_init__(self) -> None:
        self.ctx = zmq.Context()
        self.mp = mp.get_context("spawn")
        self.procs: dict[str, StageProc] = {}
        self.f: int | None = None
        self.state.source = str(self.source)
        self.state.stall_s = self.cfg.stage_timeout_s
        self._started = False

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self, timeout_s: float = 120.0) -> "Pipeline":
        c = self.cfg
        port = lambda p: p or free_port(c.host)  # noqa: E731 - 0 = pick once, keep across restarts
        self.addr = {k: c.address(port(getattr(c, f"{k}_port"))) for k in ("frames", "windows", "events", "control")}
        self.events = self.ctx.socket(zmq.SUB)
        self.events.setsockopt(zmq.RCVHWM, c.events_hwm)
        self.events.setsockopt(zmq.SUBSCRIBE, b"")
        self.events.setsockopt(zmq.LINGER, 0)
        self.events.bind(self.addr["events"])
        self.control = self.ctx.socket(zmq.PUB)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.bind(self.addr["control"])
        common = dict(cfg=c, events_addr=self.addr["events"], control_addr=self.addr["control"])
        self.procs["identify"] = StageProc("identify", dict(common, model=self.model, windows_bind=self.addr["windows"],
                                                            gallery=str(self.gallery) if self.gallery else None))
        self._spawn("identify")
        # the windower fills missing joints by the model's layout, and the producer sends that layout
        self._wait(lambda: "layout" in self._info("identify"), timeout_s, "the encoder to load")
        self.f = c.f or int(self._info("identify")["f"])
        common["cfg"] = c.with_overrides(layout=self._info("identify").get("layout") or c.layout)
        self.procs["windower"] = StageProc("windower", dict(common, f=self.f, frames_bind=self.addr["frames"],
                                                            windows_connect=self.addr["windows"]))
        self._spawn("windower")
        self._wait(lambda: all(self._running(s) for s in ("identify", "windower")), timeout_s, "identify and windower")
        self.procs["producer"] = StageProc("producer", dict(common, source=str(self.source), realtime=self.realtime,
                                                            frames_connect=self.addr["frames"]))
        self._spawn("producer")
        self._started = True
        return self

    def _spawn(self, name: str) -> None:
        sp = self.procs[name]
        if name == "producer":
            sp.kwargs["track_offset"] = 100000 * sp.restarts  # new tracker ids never continue old tracks
        sp.proc = self.mp.Process(target=_stage_main, args=(name, sp.kwargs), name=f"cagereid-{name}", daemon=True)
        sp.proc.start()
        row = self.state.stages.setdefault(name, StageRow(name))
        row.alive, row.restarts, row.state = True, sp.restarts, "starting"
        row.last_beat = time.time()

    def _info(self, name: str) -> dict:
        row = self.state.stages.get(name)
        return row.info if row else {}

    def _running(self, name: str) -> bool:
        row = self.state.stages.get(name)
        return bool(row and row.state == "running" and row.pid == self.procs[name].proc.pid)

    def _wait(self, cond, timeout_s: float, what: str) -> None:
        end = time.time() + timeout_s
        while not cond():
            self.poll(0.1)
            for name, sp in self.procs.items():
                row = self.state.stages.get(name)
                if row is not None and row.state == "error" and row.info.get("error"):
                    self.stop()
                    raise StreamError(f"{name} stage failed: {row.info['error']}")
                if sp.proc is not None and sp.proc.exitcode not in (None, 0):
                    self.stop()
                    raise StreamError(f"{name} stage exited with status {sp.proc.exitcode} while waiting for {what}")
            if time.time() > end:
                self.stop()
                raise StreamError(f"timed out after {timeout_s:.0f}s waiting for {what}")

    def poll(self, timeout_s: float = 0.05) -> int:
        """Receive every waiting event (waits up to ``timeout_s`` for the first); return how many."""
        n = 0
        if not self.events.poll(int(timeout_s * 1000)):
            return 0
        while True:
            try:
                frames = self.events.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return n
            n += 1
            try:
                msg = decode(frames, expect=(DecisionMsg, StatsMsg))
            except MessageError:
                self.state.malformed_events += 1
                continue
            if isinstance(msg, DecisionMsg):
                self.state.on_decision(msg)
            else:
                sp = self.procs.get(msg.stage)
                if sp is not None and sp.proc is not None and msg.pid != sp.proc.pid:
                    continue  # a late heartbeat of a process that was replaced
                self.state.on_stats(msg)
                if msg.stage == "producer" and msg.state == "finished" and sp is not None:
                    sp.finished = True

    def supervise(self) -> None:
        """Mark dead stages and restart them after the back-off (a finished producer stays finished)."""
        now = time.time()
        for name, sp in self.procs.items():
            row = self.state.stages.setdefault(name, StageRow(name))
            if sp.proc is None or sp.proc.is_alive():
                continue
            if sp.finished or (name == "producer" and sp.proc.exitcode == 0):
                row.alive, row.state, sp.finished = True, "finished", True
                continue
            if row.alive:
                row.alive = False
                sp.died_at = now
                self.state.note(f"{name} died (exit {sp.proc.exitcode}); restarting in {self.cfg.restart_backoff_s:.0f}s")
            if self.restart and now - sp.died_at >= self.cfg.restart_backoff_s:
                sp.restarts += 1
                self._spawn(name)

    @property
    def producer_finished(self) -> bool:
        sp = self.procs.get("producer")
        return bool(sp and sp.finished)

    def stop(self, timeout_s: float = 3.0) -> None:
        if getattr(self, "_stopped", False):
            return
        self._stopped = True
        try:
            self.control.send_multipart(ControlMsg("stop").to_frames(), flags=zmq.NOBLOCK)
        except (zmq.ZMQError, AttributeError):
            pass
        end = time.time() + timeout_s
        for sp in self.procs.values():
            if sp.proc is not None and sp.proc.pid is not None:
                sp.proc.join(max(0.0, end - time.time()))
                if sp.proc.is_alive():
                    sp.proc.terminate()
                    sp.proc.join(1.0)
                if sp.proc.is_alive():
                    sp.proc.kill()
                    sp.proc.join(1.0)
        for s in ("events", "control"):
            if hasattr(self, s):
                getattr(self, s).close(linger=0)
        self.ctx.term()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- helpers for tests and the demo -----------------------------------------------------------------
    def kill(self, name: str) -> int:
        """Kill a stage hard (fault injection); the supervisor restarts it. Returns the killed pid."""
        proc = self.procs[name].proc
        pid = proc.pid
        proc.kill()
        proc.join(5)
        return pid

    def run_until(self, cond, timeout_s: float, on_tick=None) -> bool:
        end = time.time() + timeout_s
        while time.time() < end:
            self.poll(0.05)
            self.supervise()
            if on_tick:
                on_tick()
            if cond():
                return True
        return False
