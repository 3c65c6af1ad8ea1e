"""`cagereid live`: run the live pipeline on a camera, video, recording or synthetic walkers, with a dashboard."""
from __future__ import annotations

import argparse
import signal
import time
from contextlib import contextmanager

HELP = "Live re-identification: pose source -> windows -> CAGEs -> gallery match, in a terminal dashboard"

DEFAULT_GALLERY = "gallery.sqlite"


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="encoder folder written by `cagereid train --out` "
                   "(default: the small encoder shipped in cages/pretrained)")
    p.add_argument("--config", default=None, help="stream settings YAML (default: configs/stream.yaml)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default from the config: auto)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="synthetic", help="camera index (0), video file, skeleton recording "
                   "(.npz from `cagereid extract`) or synthetic[:people=8,ids=0-4,frames=300,...] (default: synthetic)")
    p.add_argument("--gallery", default=DEFAULT_GALLERY, help=f"gallery SQLite file (default: {DEFAULT_GALLERY}; "
                   "without one every track is unknown)")
    add_common(p)
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: until the "
                   "source ends, or Ctrl-C)")
    p.add_argument("--no-dashboard", action="store_true", help="no full-screen view; print a summary at the end")
    p.add_argument("--fps", type=float, default=None, help="playback rate of synthetic/recorded sources")


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


def drive(pipe, duration: float, dashboard: bool, console=None, idle_after_finish_s: float = 2.0) -> str:
    """Run the started pipeline until ``duration``, or the source finished and results stopped coming.

    Returns why it stopped: "duration", "finished", "interrupted" (Ctrl-C), "terminated" (SIGTERM) or
    "failed: <reason>" (a stage spent its restart budget). Shows the live dashboard when asked and stdout is a
    terminal.
    """
    from rich.console import Console
    from rich.live import Live

    from stream.dashboard import render

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

    from stream.dashboard import make_health, make_tracks

    now = time.time() if now is None else now
    console.print(Panel(make_tracks(state, now), title="tracks"))
    console.print(Panel(make_health(state, now), title="pipeline health"))
    p50, p95 = state.latency()
    console.print(f"decisions {state.decisions}   latency frame→decision p50 {p50:.1f} ms, p95 {p95:.1f} ms   "
                  f"malformed events {state.malformed_events}, spoofed {state.spoofed_events}")
    for p in state.problems:
        console.print(f"[red]{escape(p)}[/red]")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from stream.config import load_config
    from stream.errors import GalleryError
    from stream.pipeline import Pipeline

    from stream.producer import check_source

    cfg = load_config(args.config, device=args.device, fps=args.fps)
    check_source(args.source, open_it=True)
    gallery = Path(args.gallery) if args.gallery else None
    if gallery is not None and not gallery.exists():
        if args.gallery != DEFAULT_GALLERY:
            raise GalleryError(f"{gallery}: no such gallery (enrol someone first: cagereid enroll --gallery {gallery})")
        gallery = None  # no default gallery yet: everybody is unknown
    if gallery is not None:
        from stream.gallery import Gallery

        with Gallery(gallery, create=False, readonly=True):  # a bad gallery is a one-line error before start-up
            pass
    console = Console()
    with sigterm_stops():
        pipe = Pipeline(cfg, args.source, model=args.model, gallery=gallery)
        try:
            pipe.state.title = "cagereid live"
            try:
                pipe.start()
                reason = drive(pipe, args.duration, not args.no_dashboard, console)
            except Terminated:
                reason = "terminated"
            except KeyboardInterrupt:
                reason = "interrupted"
            stopped = time.time()
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the stop below runs to its end
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            pipe.stop()
    print_summary(pipe.state, console, stopped)
    console.print(f"stopped: {reason}", markup=False)
    if reason.startswith("failed"):
        import sys

        print(f"error: {reason[len('failed: '):]}", file=sys.stderr)
    return exit_status(reason)
