"""Terminal dashboard: `DashboardState` (what the supervisor knows) and `render(state) -> Layout` (pure).

Regions: ``header`` (source, model, gallery size, uptime), ``tracks`` (one row per track: its camera when there
are cameras, identity (anonymous visitors marked), confidence, windows seen, last update), ``cameras`` (serve: per
camera frames/s, tracks, last frame; refused keys), ``handovers`` (serve: the latest "visitor-12: cam1 -> cam3 after
14 s"), ``health`` (per stage and identify worker: state, fps, queue, drops, malformed, restarts) and ``footer``
(latency frame -> decision p50/p95, totals, last problem).
The live loop only calls ``live.update(render(state))``; tests render into a captured `Console`.
"""
from __future__ import annotations

import signal
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from rich.console import Group
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stream.decision import PENDING, UNKNOWN
from stream.messages import DecisionMsg, StatsMsg


@dataclass
class TrackRow:
    track: int
    camera: str = ""
    anonymous: bool = False
    identity: str = PENDING
    confidence: float = 0.0
    windows: int = 0
    score: float = 0.0
    best: str = ""
    label: str = ""  # ground truth (synthetic sources only)
    last_update: float = 0.0
    latency_ms: float = 0.0


@dataclass
class StageRow:
    name: str
    state: str = "starting"
    pid: int = 0
    alive: bool = True
    restarts: int = 0
    last_beat: float = 0.0
    counters: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)


@dataclass
class DashboardState:
    title: str = "cagereid live"
    source: str = ""
    model: str = ""
    started: float = field(default_factory=time.time)
    tracks: dict[tuple[str, int], TrackRow] = field(default_factory=dict)  # (camera, track) -> row
    stages: dict[str, StageRow] = field(default_factory=dict)
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=5000))  # frame published -> decision
    decisions: int = 0
    malformed_events: int = 0
    spoofed_events: int = 0  # well-formed events from the wrong sender (a stage speaking for another one)
    problems: deque = field(default_factory=lambda: deque(maxlen=3))
    first_decision: float = 0.0  # t_decided of the first and the latest decision (throughput)
    last_decision: float = 0.0
    newest_t_pub: float = 0.0  # newest source frame that has reached a decision (how `cagereid soak` sees recovery)
    stall_s: float = 3.0
    max_rows: int = 24
    track_timeout_s: float = 3.0
    ended_tracks: int = 0  # serve: tracks gone quiet (their camera dropped, the walker left) and removed
    handovers: deque = field(default_factory=lambda: deque(maxlen=4))
    handover_count: int = 0
    visitors_purged: int = 0
    monitor_dropped: int = 0  # serve: messages a slow remote dashboard did not take
    END_AFTER_S = 30.0  # serve: a track without a decision this long has ended (its row goes)

    def on_decision(self, msg: DecisionMsg, now: float | None = None) -> None:
        now = time.time() if now is None else now
        row = self.tracks.setdefault((msg.camera, msg.track), TrackRow(msg.track, msg.camera))
        row.anonymous = msg.anonymous
        row.identity, row.confidence, row.windows = msg.identity, msg.confidence, msg.windows
        row.score, row.best, row.label, row.last_update = msg.score, msg.best, msg.label, now
        row.latency_ms = (msg.t_decided - msg.t_pub) * 1e3  # frame published -> decision made
        self.latencies_ms.append(row.latency_ms)
        self.decisions += 1
        self.first_decision = self.first_decision or msg.t_decided
        self.last_decision = msg.t_decided
        self.newest_t_pub = max(self.newest_t_pub, msg.t_pub)

    def on_stats(self, msg: StatsMsg, now: float | None = None) -> None:
        row = self.stages.setdefault(msg.stage, StageRow(msg.stage))
        row.state, row.pid, row.counters, row.info = msg.state, msg.pid, msg.counters, msg.info
        row.last_beat = time.time() if now is None else now
        if msg.info.get("error"):
            self.note(f"{msg.stage}: {msg.info['error']}")

    def on_handover(self, h: dict) -> None:
        self.handovers.append(h)
        self.handover_count += 1

    def expire_tracks(self, now: float) -> None:
        """Serve: rows of tracks without a decision for `END_AFTER_S` go (counted in ``ended_tracks``)."""
        for key in [k for k, r in self.tracks.items() if now - r.last_update > self.END_AFTER_S]:
            del self.tracks[key]
            self.ended_tracks += 1

    def cameras(self, now: float | None = None) -> list[dict]:
        """Per camera, from the windower's stats: name, frames, frames/s, tracks, seconds since its last frame."""
        w = self.stages.get("windower")
        if w is None:
            return []
        c = w.counters
        out = []
        for key in c:
            if key.startswith("cam.") and key.endswith(".frames"):
                name = key[4:-7]
                out.append({"camera": name, "frames": int(c[key]), "fps": float(c.get(f"cam.{name}.fps", 0)),
                            "tracks": int(c.get(f"cam.{name}.tracks", 0)), "age": float(c.get(f"cam.{name}.age", 0))})
        return sorted(out, key=lambda r: r["camera"])

    @property
    def visitors_given(self) -> int:
        """Anonymous visitor ids the identify workers enrolled (since each started)."""
        return int(sum(r.counters.get("visitors", 0) for n, r in self.stages.items() if n.startswith("identify")))

    @property
    def refused(self) -> tuple[int, int]:
        """Camera handshakes refused by serve (unknown key), and how many distinct keys."""
        w = self.stages.get("windower")
        c = w.counters if w else {}
        return int(c.get("refused_handshakes", 0)), int(c.get("refused_keys", 0))

    def note(self, text: str) -> None:
        if not self.problems or self.problems[-1] != text:
            self.problems.append(text)

    def latency(self) -> tuple[float, float]:
        if not self.latencies_ms:
            return float("nan"), float("nan")
        a = np.fromiter(self.latencies_ms, float)
        return float(np.percentile(a, 50)), float(np.percentile(a, 95))

    @property
    def gallery_size(self) -> int:
        st = self.stages.get("identify")
        return int(st.counters.get("gallery", 0)) if st else 0


def _fmt_age(seconds: float) -> str:
    return f"{seconds:.1f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


def _identity_text(identity: str, anonymous: bool = False) -> Text:
    if identity == PENDING:
        return Text("…  (pending)", style="dim")
    if identity == UNKNOWN:
        return Text("unknown", style="yellow")
    if anonymous:
        return Text(f"{identity} (anonymous)", style="bold magenta")
    return Text(identity, style="bold green")


def make_tracks(state: DashboardState, now: float) -> Table:
    show_truth = any(r.label for r in state.tracks.values())
    show_camera = any(r.camera for r in state.tracks.values())
    t = Table(expand=True, show_edge=False, pad_edge=False)
    if show_camera:
        t.add_column("camera")
    t.add_column("track", justify="right")
    t.add_column("identity")
    t.add_column("confidence", justify="right")
    t.add_column("windows", justify="right")
    t.add_column("best match", justify="left")
    if show_truth:
        t.add_column("truth")
    t.add_column("last update", justify="right")
    rows = sorted(state.tracks.values(), key=lambda r: -r.last_update)[: state.max_rows]
    for r in sorted(rows, key=lambda r: (r.camera, r.track)):
        age = now - r.last_update
        cells = [Text(r.camera)] if show_camera else []
        cells += [str(r.track), _identity_text(r.identity, r.anonymous), f"{r.confidence:.0%}", str(r.windows),
                 Text(f"{r.best} {r.score:+.2f}") if r.best else "-"]  # Text: names are never markup
        if show_truth:
            cells.append(Text(r.label or "-"))
        cells.append(Text(_fmt_age(age), style="dim" if age > state.stall_s else ""))
        t.add_row(*cells)
    if not state.tracks:
        t.add_row("-", Text("waiting for windows…", style="dim"), "", "", "", *([""] if show_truth else []), "")
    return t


def _rate(c: dict, *keys: str) -> float:
    for k in keys:
        if f"{k}_per_s" in c:
            return float(c[f"{k}_per_s"])
    return 0.0


def make_health(state: DashboardState, now: float) -> Table:
    t = Table(expand=True, show_edge=False, pad_edge=False)
    for col in ("stage", "state", "rate/s", "queue", "dropped", "malformed", "restarts"):
        t.add_column(col, justify="left" if col in ("stage", "state") else "right")
    workers = sorted((n for n in state.stages if n.startswith("identify-")), key=lambda n: int(n.split("-")[1]))
    serve = state.source.startswith("cameras")
    names = ["windower", "identify", *workers] if serve else ["producer", "windower", "identify", *workers]
    for name in names:
        r = state.stages.get(name)
        if r is None:
            t.add_row(name, Text("not started", style="dim"), "", "", "", "", "")
            continue
        c = r.counters
        silent = now - r.last_beat > state.stall_s
        if not r.alive and r.state != "finished":
            st = Text("DEAD (restarting)", style="bold red")
        elif r.state == "error":
            st = Text("error", style="bold red")
        elif silent and r.state not in ("finished",):
            st = Text(f"stalled {now - r.last_beat:.0f}s", style="red")
        else:
            st = Text(r.state, style="green" if r.state == "running" else "")
        unit = {"producer": "frames", "windower": "frames"}.get(name, "windows")
        dropped = sum(c.get(k, 0) for k in ("dropped", "windows_dropped", "frames_lost", "stale"))
        t.add_row(name, st, f"{_rate(c, unit):.0f} {unit}", f"{c.get('queue', 0):.0f}", f"{dropped:.0f}",
                  f"{c.get('malformed', 0):.0f}", str(r.restarts))
    return t


def make_cameras(state: DashboardState, now: float) -> Table:
    t = Table(expand=True, show_edge=False, pad_edge=False)
    for col in ("camera", "state", "frames/s", "tracks", "last frame"):
        t.add_column(col, justify="left" if col in ("camera", "state") else "right")
    for r in state.cameras(now):
        quiet = r["age"] > state.track_timeout_s
        st = Text("silent (tracks ended)", style="red") if quiet else Text("streaming", style="green")
        t.add_row(Text(r["camera"]), st, f"{r['fps']:.0f}", str(r["tracks"]), _fmt_age(r["age"]))
    if not state.cameras(now):
        t.add_row(Text("waiting for cameras…", style="dim"), "", "", "", "")
    return t


def make_handovers(state: DashboardState) -> Group:
    from stream.visitors import handover_text

    refused, keys = state.refused
    w = state.stages.get("windower")
    mismatch = int(w.counters.get("camera_mismatch", 0)) if w else 0
    lines = [Text(f"refused camera handshakes {refused} ({keys} unknown keys)   "
                  + (f"frames under another camera's name {mismatch}   " if mismatch else "")
                  + f"handovers {state.handover_count}   ended tracks {state.ended_tracks}   "
                  f"visitor ids given {state.visitors_given} (purged {state.visitors_purged})",
                  style="red" if refused or mismatch else "")]
    for h in reversed(state.handovers):
        lines.append(Text(handover_text(h), style="magenta" if h.get("anonymous") else "cyan"))
    return Group(*lines)


def make_header(state: DashboardState, now: float) -> Text:
    ident = state.stages.get("identify")
    dev = ident.info.get("device", "?") if ident else "?"
    fp = ident.info.get("fingerprint", "?") if ident else "?"
    txt = Text()
    txt.append(f"{state.title}", style="bold")
    txt.append(f"   gallery {state.gallery_size} people   model {fp} on {dev}   up {now - state.started:.0f}s\n")
    txt.append(f"source {state.source}", style="dim")  # Text.append: plain text, never markup
    return txt


def make_footer(state: DashboardState) -> Group:
    p50, p95 = state.latency()
    lat = "n/a" if np.isnan(p50) else f"p50 {p50:.1f} ms  p95 {p95:.1f} ms"
    line = Text(f"latency frame→decision {lat}   decisions {state.decisions}   "
                f"malformed events {state.malformed_events}   spoofed {state.spoofed_events}   Ctrl-C to stop")
    probs = [Text(p, style="red") for p in state.problems]
    return Group(line, *probs)


def render(state: DashboardState, now: float | None = None) -> Layout:
    """The whole screen for one state (pure: no I/O, no clock unless ``now`` is omitted)."""
    now = time.time() if now is None else now
    layout = Layout(name="root")
    n_rows = min(len(state.tracks), state.max_rows) or 1
    n_workers = sum(1 for n in state.stages if n.startswith("identify-"))
    serve = state.source.startswith("cameras")
    parts = [Layout(Panel(make_header(state, now)), name="header", size=4),
             Layout(Panel(make_tracks(state, now), title="tracks"), name="tracks", size=n_rows + 4)]
    if serve:
        cams = len(state.cameras(now)) or 1
        parts += [Layout(Panel(make_cameras(state, now), title="cameras"), name="cameras", size=cams + 4),
                  Layout(Panel(make_handovers(state), title="handovers"), name="handovers",
                         size=3 + len(state.handovers))]
    layout.split_column(
        *parts,
        Layout(Panel(make_health(state, now), title="pipeline health"), name="health", size=7 + n_workers),
        Layout(Panel(make_footer(state)), name="footer", size=3 + len(state.problems)),
        Layout(name="rest"),  # whatever the terminal has left
    )
    layout["rest"].update(Text(""))
    return layout


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager, ``kill``): stop the stages, print the summary, exit 0."""


@contextmanager
def sigterm_stops():
    """While active, SIGTERM raises `Terminated` in the main thread (like Ctrl-C raises KeyboardInterrupt); the
    previous handler comes back afterwards, and a second SIGTERM while stopping is ignored."""
    def handler(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: the stop that follows must finish
        raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    # Ctrl-C / SIGINT always interrupts, even when started from a shell that ignores SIGINT for background jobs
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGINT, old_int)


def exit_status(reason: str) -> int:
    """0 for a run that ended as asked (duration, source finished, SIGTERM), 130 for Ctrl-C, 1 for a failure."""
    return {"interrupted": 130}.get(reason, 1 if reason.startswith("failed") else 0)


def run_until_stopped(pipe, duration: float, dashboard: bool, console, events=None, on_started=None) -> tuple[str, float]:
    """Start ``pipe``, `drive` it, and always stop it (and close ``events``): ``(reason, time stopped)``.

    Call it inside `sigterm_stops()`: SIGTERM and Ctrl-C end the run as "terminated" / "interrupted", and the stop
    that follows runs to its end (further signals ignored). ``on_started()`` runs once the stages are up."""
    try:
        try:
            pipe.start()
            if on_started is not None:
                on_started()
            reason = drive(pipe, duration, dashboard, console)
        except Terminated:
            reason = "terminated"
        except KeyboardInterrupt:
            reason = "interrupted"
        return reason, time.time()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the stop below runs to its end
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        pipe.stop()
        if events is not None:
            events.close()


def drive(pipe, duration: float, dashboard: bool, console=None, idle_after_finish_s: float = 2.0) -> str:
    """Run the started pipeline until ``duration``, or the source finished and results stopped coming.

    Returns why it stopped: "duration", "finished", "interrupted" (Ctrl-C), "terminated" (SIGTERM) or
    "failed: <reason>" (a stage spent its restart budget). Shows the live dashboard when asked and stdout is a
    terminal.
    """
    from rich.console import Console
    from rich.live import Live

    console = console or Console()
    start = time.time()
    last_decisions, last_change = -1, time.time()

    def done() -> str | None:
        nonlocal last_decisions, last_change
        now = time.time()
        if pipe.state.decisions != last_decisions:
            last_decisions, last_change = pipe.state.decisions, now
        if pipe.failed:
            return f"failed: {pipe.failed}"
        if duration and now - start >= duration:
            return "duration"
        if pipe.producer_finished and now - last_change >= idle_after_finish_s:
            return "finished"
        return None

    reason = None
    try:
        if dashboard and console.is_terminal:
            with Live(render(pipe.state), console=console, screen=True, refresh_per_second=4,
                      auto_refresh=False) as live:
                last_draw = 0.0
                while reason is None:
                    pipe.poll(0.05)
                    pipe.supervise()
                    if time.time() - last_draw >= 0.25:
                        live.update(render(pipe.state), refresh=True)
                        last_draw = time.time()
                    reason = done()
        else:
            while reason is None:
                pipe.poll(0.05)
                pipe.supervise()
                reason = done()
    except Terminated:
        reason = "terminated"
    except KeyboardInterrupt:
        reason = "interrupted"
    return reason


def print_summary(state, console, now: float | None = None) -> None:
    """Tracks and stage health as they were at ``now`` (the moment the run stopped), then latency."""
    from rich.markup import escape
    from rich.panel import Panel

    now = time.time() if now is None else now
    console.print(Panel(make_tracks(state, now), title="tracks"))
    if state.source.startswith("cameras"):
        console.print(Panel(make_cameras(state, now), title="cameras"))
        console.print(Panel(make_handovers(state), title="handovers"))
    console.print(Panel(make_health(state, now), title="pipeline health"))
    p50, p95 = state.latency()
    console.print(f"decisions {state.decisions}   latency frame→decision p50 {p50:.1f} ms, p95 {p95:.1f} ms   "
                  f"malformed events {state.malformed_events}, spoofed {state.spoofed_events}")
    for p in state.problems:
        console.print(f"[red]{escape(p)}[/red]")
