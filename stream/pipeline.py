"""Supervisor: starts the stages as processes, collects their events, restarts the ones that die.

Topology (every arrow a ZeroMQ socket pair; the binding side is the one that is never restarted first)::

    producer --PUSH--> [PULL bind] windower --PUSH--> [PULL bind] identify
        \\                  |                               |
         `---- PUB ---------+------------ PUB --------------+----> [SUB bind] supervisor (events: stats,
                                                                     heartbeats, decisions) -> dashboard
    supervisor [PUB bind control] ---> SUB in every stage ("stop")

Ports left at 0 in `StreamConfig` are picked by the binding socket itself at start-up (no probe-then-bind race)
and kept, so a restarted stage binds or connects to the same address and its peers reconnect. Start-up is a
handshake, not a sleep: identify starts first and reports its model (window length, joint layout) and address;
the windower then starts with the joint count of that layout; the producer starts once both report "running".

Every bus is CURVE-encrypted with keys made for this run and admits only the run's own processes
(`stream.security`); the supervisor believes a stats message only from the stage it names and a decision only
from identify. Stages die with the supervisor (parent-death signal, and the "alive" heartbeat on the control
bus). A stage that dies more than ``restart_budget`` times within ``restart_window_s`` ends the run (`failed`).

Serve (`cagereid serve`, ``source=None``): no producer stage; the windower binds the frames bus on ``frames_bind``
for remote cameras (`cagereid camera`), with serve's long-lived key pair and the allowed camera keys
(``camera_keys``) or, without keys, plain TCP on 127.0.0.1 only; ``workers`` identify workers ("identify",
"identify-1", ...) each bind their own windows address and the windower routes each track to one of them. Decisions
from every worker reach the supervisor, which also tracks handovers between cameras (`stream.visitors.Handovers`)
and, with ``visitors``, deletes expired visitor ids from the gallery every `PURGE_EVERY_S`.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from stream import security
from stream.config import StreamConfig
from stream.dashboard import DashboardState, StageRow
from stream.errors import StreamError
from stream.messages import (
    _MAX_HEADER,
    MAX_WORKERS,
    ControlMsg,
    DecisionMsg,
    MessageError,
    NamesMsg,
    StatsMsg,
    decode,
    is_identify,
    worker_name,
)

STAGES = ("identify", "windower", "producer")
PURGE_EVERY_S = 60.0
STABLE_S = 10.0  # a stage that ran this long before dying is restarted at once (no back-off)
PRELOAD = ["numpy", "zmq", "torch", "stream.runtime", "stream.producer", "stream.windower", "stream.identify",
           "cages.features", "cages.matcher"]


def _release_fork_server() -> None:
    """A process forked by the fork server inherits the write end of the server's "alive" pipe (so that it could
    start processes itself). A stage never does; holding it would keep the server alive after the supervisor
    died, and with it the stages, whose parent-death signal fires when the server exits."""
    try:
        from multiprocessing import forkserver

        server = forkserver._forkserver
        if server._forkserver_alive_fd is not None:
            os.close(server._forkserver_alive_fd)
            server._forkserver_alive_fd = None
    except (AttributeError, OSError):
        pass  # the "alive" heartbeat on the control bus still stops an orphan


def _stage_main(name: str, kwargs: dict, parent_pid: int, module: str | None = None) -> int:
    """Process entry point (importable, so the fork server can find it). The keys in ``kwargs`` arrive through
    the fork server's socket, never on a command line or in the environment."""
    import importlib
    import sys

    from stream.runtime import die_with_parent

    _release_fork_server()
    die_with_parent(parent_pid)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mod = importlib.import_module(f"stream.{module or name}")
    sys.exit(mod.run(**kwargs))


@dataclass
class StageProc:
    name: str
    kwargs: dict
    proc: mp.process.BaseProcess | None = None
    restarts: int = 0
    died_at: float = 0.0
    finished: bool = False
    deaths: deque = field(default_factory=deque)  # when it died, within the restart window
    started_at: float = 0.0
    quick_deaths: int = 0  # deaths in a row less than STABLE_S after a start

    @property
    def module(self) -> str:
        return "identify" if is_identify(self.name) else self.name


@dataclass
class Pipeline:
    cfg: StreamConfig
    source: str | None  # None: serve (frames come from remote cameras)
    model: str | None = None
    gallery: str | Path | None = None
    realtime: bool = True
    restart: bool = True
    state: DashboardState = field(default_factory=DashboardState)
    extra_peers: tuple[str, ...] = ()  # tests and `cagereid soak`: authenticated fault injectors (`peer_socket`)
    overlay: dict | None = None  # live overlay {"path": video or None, "show": bool}: drawn by the producer
    workers: int = 1  # identify workers
    frames_bind: str | None = None  # serve: where cameras connect (tcp://HOST:PORT)
    camera_keys: tuple | None = None  # serve: (server KeyPair, {camera public key: name}); None = plain, loopback
    visitors: bool = False  # open world: anonymous visitor ids in the gallery
    monitor_bind: str | None = None  # serve: where remote dashboards attach (`stream.monitor`)
    monitor_keys: tuple | None = None  # (server KeyPair, {viewer public key: name}); None = plain, loopback

    def __post_init__(self) -> None:
        self.ctx = zmq.Context()
        # Stages are forked from a fork server that has imported torch, numpy, zmq and the stage modules once:
        # a restarted identify does not pay the ~2 s torch import again. Each stage still starts from a clean
        # single-threaded process (not a fork of this one), and the server exits when this process does.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.mp = mp.get_context("forkserver")
        self.mp.set_forkserver_preload(PRELOAD)
        self.procs: dict[str, StageProc] = {}
        self.f: int | None = None
        self.J: int | None = None
        if not 1 <= self.workers <= MAX_WORKERS:
            raise StreamError(f"--workers must be 1..{MAX_WORKERS}, not {self.workers}")
        self.serve = self.source is None
        self.state.source = str(self.source) if not self.serve else f"cameras -> {self.frames_bind}"
        self.state.stall_s = self.cfg.stage_timeout_s
        self.state.track_timeout_s = self.cfg.track_timeout_s
        server, cameras = self.camera_keys if self.camera_keys else (None, None)
        self.keys = security.RunKeys.generate(tuple(self.extra_peers), self.workers, server, cameras,
                                              plain_frames=self.serve and not self.camera_keys)
        from stream.visitors import Handovers

        self.handovers = Handovers()
        self.handover_listeners: list = []  # callables fed every handover record (e.g. EventLog.handover)
        self._last_purge = 0.0
        self._purge_thread = None
        self.monitor: zmq.Socket | None = None  # serve: remote dashboards (`_bind_monitor`, at start)
        self.failed: str | None = None  # why the run gave up (restart budget spent); None while healthy
        self._started = False
        self._last_alive = 0.0
        self.decision_listeners: list = []  # callables fed every accepted DecisionMsg (e.g. `stream.events.EventLog`)
        self._names: dict[int, tuple[str, float]] = {}  # overlay: the latest identity of every track
        self._names_sent = 0.0
        self._names_dirty = False
        if self.overlay:
            self.decision_listeners.append(self._note_name)

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self, timeout_s: float = 120.0) -> "Pipeline":
        c = self.cfg
        mine = self.keys.for_stage("supervisor")
        self.auth = security.Authenticator(self.ctx, mine.allow)
        self.addr = {k: c.address(getattr(c, f"{k}_port")) for k in ("frames", "windows", "events", "control")}
        self.events = self._bind(zmq.SUB, "events", mine)
        self.events.setsockopt(zmq.RCVHWM, c.events_hwm)
        self.events.setsockopt(zmq.SUBSCRIBE, b"")
        self.control = self._bind(zmq.PUB, "control", mine)
        self.monitor = self._bind_monitor() if self.monitor_bind else None
        common = dict(cfg=c, events_addr=self.addr["events"], control_addr=self.addr["control"])
        workers = [worker_name(k) for k in range(self.workers)]
        for k, name in enumerate(workers):
            bind = self.addr["windows"] if k == 0 else c.address(0)
            self.procs[name] = StageProc(name, dict(common, model=self.model, windows_bind=bind, worker=k,
                                                    visitors=self.visitors,
                                                    gallery=str(self.gallery) if self.gallery else None))
            self._spawn(name)
        self._wait(lambda: all(self._running(n) for n in workers), timeout_s, "the encoder to load")
        info = self._info("identify")
        self.f = int(info["f"])
        if c.f and c.f != self.f:
            self.stop()
            raise StreamError(f"config f = {c.f}, but the model takes {self.f}-frame windows (set f: 0)")
        from pose.layouts import get_layout

        layout = info.get("layout") or c.layout  # the producer sends, and the windower expects, the model's layout
        self.J = get_layout(layout).J
        targets = []
        for name in workers:  # port 0 -> picked
            addr = self.procs[name].kwargs["windows_bind"] = self._info(name)["address"]
            targets.append(addr)
        self.addr["windows"] = targets[0]
        common["cfg"] = c.with_overrides(layout=layout)  # the windower fills missing joints by the model's layout
        frames_bind = self.frames_bind or self.addr["frames"]
        self.procs["windower"] = StageProc("windower", dict(common, f=self.f, J=self.J, frames_bind=frames_bind,
                                                            windows_connect=targets if self.serve else targets[0],
                                                            serve=self.serve))
        self._spawn("windower")
        self._wait(lambda: self._running("windower"), timeout_s, "the windower")
        self.addr["frames"] = self.procs["windower"].kwargs["frames_bind"] = self._info("windower")["address"]
        if not self.serve:
            self.procs["producer"] = StageProc("producer", dict(common, source=str(self.source),
                                                                realtime=self.realtime,
                                                                frames_connect=self.addr["frames"],
                                                                overlay=self.overlay))
            self._spawn("producer")
        self._started = True
        return self

    def _bind(self, kind: int, bus: str, keys: security.StageKeys) -> zmq.Socket:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        security.serve(sock, keys, bus, _MAX_HEADER)
        host, port = self.addr[bus].rsplit(":", 1)
        try:
            if port == "0":
                self.addr[bus] = f"{host}:{sock.bind_to_random_port(host)}"
            else:
                sock.bind(self.addr[bus])
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            self.stop()
            raise StreamError(f"cannot bind the {bus} bus to {self.addr[bus]} ({exc}); "
                            f"set {bus}_port to a free port or 0") from None
        return sock

    def _bind_monitor(self) -> zmq.Socket:
        """Serve: a PUB socket that republishes every accepted decision and stats message for remote dashboards
        (`cagereid dashboard`): CURVE with serve's key pair admitting the ``--viewers`` keys, or plain TCP on a
        loopback address."""
        sock = self.ctx.socket(zmq.PUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, self.cfg.events_hwm)
        if self.monitor_keys:
            server, viewers = self.monitor_keys
            self.auth.allow["monitor"] = dict(viewers)
            security.serve(sock, security.StageKeys("supervisor", server, {}, {"monitor": server}), "monitor",
                           _MAX_HEADER)
        try:
            host, port = self.monitor_bind.rsplit(":", 1)
            if port == "0":
                self.addr["monitor"] = f"{host}:{sock.bind_to_random_port(host)}"
            else:
                sock.bind(self.monitor_bind)
                self.addr["monitor"] = self.monitor_bind
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            self.stop()
            raise StreamError(f"cannot bind the dashboard address {self.monitor_bind} ({exc})") from None
        return sock

    def _forward(self, frames: list[bytes]) -> None:
        if self.monitor is not None:
            try:
                self.monitor.send_multipart(frames, flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                self.state.monitor_dropped += 1

    def peer_socket(self, kind: int, bus: str, name: str, max_part: int = 1 << 24) -> zmq.Socket:
        """A socket connected to ``bus`` with the keys of extra peer ``name`` (tests, `cagereid soak`)."""
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        keys = security.StageKeys(name, self.keys.clients[name], {b: kp.public for b, kp in self.keys.server.items()})
        security.client(sock, keys, bus, max_part)
        sock.connect(self.addr[bus])
        return sock

    def _spawn(self, name: str) -> None:
        sp = self.procs[name]
        if name == "producer":
            sp.kwargs["track_offset"] = 100000 * sp.restarts  # new tracker ids never continue old tracks
            self._names_dirty = bool(self._names)  # a new producer learns the names at once
        sp.kwargs["keys"] = self.keys.for_stage(name)
        sp.proc = self.mp.Process(target=_stage_main, args=(name, sp.kwargs, os.getpid(), sp.module),
                                  name=f"cagereid-{name}", daemon=True)
        sp.proc.start()
        sp.started_at = time.time()
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

    def alive(self, force: bool = False) -> None:
        """Tell the stages the supervisor is alive (every ``heartbeat_s``); a stage that stops hearing it exits."""
        now = time.time()
        if force or now - self._last_alive >= self.cfg.heartbeat_s:
            self._last_alive = now
            try:
                self.control.send_multipart(ControlMsg("alive").to_frames(), flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                pass

    def _note_name(self, msg: DecisionMsg) -> None:
        new = (msg.identity, float(msg.confidence))
        if self._names.get(msg.track) != new:
            self._names.pop(msg.track, None)  # the newest decisions last (NamesMsg keeps the last ones)
            self._names[msg.track] = new
            self._names_dirty = True

    def _send_names(self, min_interval_s: float = 0.2) -> None:
        """Overlay: tell the producer the current names, at most every ``min_interval_s`` when something changed."""
        now = time.time()
        if not self._names_dirty or now - self._names_sent < min_interval_s:
            return
        self._names_sent, self._names_dirty = now, False
        try:
            self.control.send_multipart(NamesMsg(dict(self._names)).to_frames(), flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            self._names_dirty = True

    def poll(self, timeout_s: float = 0.05) -> int:
        """Receive every waiting event (waits up to ``timeout_s`` for the first); return how many.

        A decision counts only from identify's key and a stats message only from the key of the stage it names
        (anything else: ``spoofed_events``); malformed ones are counted in ``malformed_events``."""
        self.alive()
        self._send_names()
        n = 0
        if not self.events.poll(int(timeout_s * 1000)):
            return 0
        while n < 10 * self.cfg.events_hwm:
            try:
                frames = self.events.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return n
            n += 1
            self.handle_event([f.bytes for f in frames], security.peer_of(frames[0]))
        return n

    def handle_event(self, frames: list[bytes], peer: str) -> str:
        """One event from ``peer`` (the name its key was admitted under): "decision", "stats", "late" (a replaced
        process), "malformed" or "spoofed" (counted in the dashboard state)."""
        try:
            msg = decode(frames, expect=(DecisionMsg, StatsMsg))
        except MessageError:
            self.state.malformed_events += 1
            return "malformed"
        if (isinstance(msg, DecisionMsg) and not is_identify(peer)) or (isinstance(msg, StatsMsg) and peer != msg.stage):
            self.state.spoofed_events += 1
            return "spoofed"
        if isinstance(msg, DecisionMsg):
            self.state.on_decision(msg)
            self._forward(frames)
            for listener in self.decision_listeners:
                listener(msg)
            if self.serve:
                h = self.handovers(msg)
                if h is not None:
                    self.state.on_handover(h)
                    for listener in self.handover_listeners:
                        listener(h)
            return "decision"
        sp = self.procs.get(msg.stage)
        if sp is not None and sp.proc is not None and msg.pid != sp.proc.pid:
            return "late"  # a late heartbeat of a process that was replaced
        self.state.on_stats(msg)
        self._forward(frames)
        if msg.stage == "producer" and msg.state == "finished" and sp is not None:
            sp.finished = True
        return "stats"

    def supervise(self) -> None:
        """Mark dead stages and restart them (a finished producer stays finished): at once when the stage had run
        for `STABLE_S` (a crash after a healthy run), else after ``restart_backoff_s``, doubling with each further
        quick death (a crash loop). A stage
        that died more than ``restart_budget`` times within ``restart_window_s`` is not restarted: the run has
        `failed` (the reason names the stage and its last error)."""
        now = time.time()
        c = self.cfg
        if self.serve:
            self.state.expire_tracks(now)
            self._purge(now)
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
                sp.quick_deaths = sp.quick_deaths + 1 if now - sp.started_at < STABLE_S else 0
                sp.deaths.append(now)
                while sp.deaths and now - sp.deaths[0] > c.restart_window_s:
                    sp.deaths.popleft()
                if len(sp.deaths) > c.restart_budget and self.failed is None:
                    err = row.info.get("error")
                    self.failed = (f"{name} died {len(sp.deaths)} times within {c.restart_window_s:g}s "
                                   f"(last exit status {sp.proc.exitcode}{'; ' + err if err else ''}); giving up")
                    self.state.note(self.failed)
                else:
                    self.state.note(f"{name} died (exit {sp.proc.exitcode}); restarting"
                                    + (f" in {self._backoff(sp):g}s" if self._backoff(sp) else ""))
            if self.restart and self.failed is None and now - sp.died_at >= self._backoff(sp):
                sp.restarts += 1
                self._spawn(name)

    def _purge(self, now: float) -> None:
        """Serve with visitors: delete expired visitor ids (a thread: the database may be slow or away)."""
        if not (self.visitors and self.gallery) or now - self._last_purge < PURGE_EVERY_S:
            return
        if self._purge_thread is not None and self._purge_thread.is_alive():
            return
        self._last_purge = now
        import threading

        from stream.visitors import purge_visitors

        older = min(self.cfg.visitor_expire_s, self.cfg.retention_s)

        def work() -> None:
            try:
                from stream.gallery import gallery_exists

                if gallery_exists(self.gallery):
                    self.state.visitors_purged += purge_visitors(self.gallery, older)
            except Exception as exc:  # noqa: BLE001 - shown on the dashboard; tried again in a minute
                self.state.note(f"visitor purge: {exc}")

        self._purge_thread = threading.Thread(target=work, name="visitor-purge", daemon=True)
        self._purge_thread.start()

    def _backoff(self, sp: StageProc) -> float:
        return 0.0 if sp.quick_deaths == 0 else self.cfg.restart_backoff_s * 2 ** (sp.quick_deaths - 1)

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
        for s in ("events", "control", "monitor"):
            sock = getattr(self, s, None)
            if sock is not None:
                sock.close(linger=0)
        if hasattr(self, "auth"):
            self.auth.stop()
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
        while time.time() < end and self.failed is None:
            self.poll(0.05)
            self.supervise()
            if on_tick:
                on_tick()
            if cond():
                return True
        return False
