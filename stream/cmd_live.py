"""`cagereid live`: run the live pipeline on a camera, video, recording or synthetic walkers, with a dashboard."""
from __future__ import annotations

import argparse

HELP = "Live re-identification: pose source -> windows -> CAGEs -> gallery match, in a terminal dashboard"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from stream.options import DEFAULT_GALLERY, add_common

    p.add_argument("--source", default="synthetic", help="camera index (0), video file, skeleton recording "
                   "(.npz from `cagereid extract`) or synthetic[:people=8,ids=0-4,frames=300,...] (default: synthetic)")
    p.add_argument("--gallery", default=DEFAULT_GALLERY, help=f"gallery SQLite file or postgresql:// URL "
                   f"(default: {DEFAULT_GALLERY}; without one every track is unknown)")
    add_common(p)
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: until the "
                   "source ends, or Ctrl-C)")
    p.add_argument("--no-dashboard", action="store_true", help="no full-screen view; print a summary at the end")
    p.add_argument("--fps", type=float, default=None, help="playback rate of synthetic/recorded sources")
    p.add_argument("--overlay", default=None, metavar="VIDEO",
                   help="video source: also write the frames with each person's box, skeleton (left orange, right "
                        "blue), name or unknown with confidence and trail to this .mp4/.avi (drawn off the real-time "
                        "path; frames are dropped, never waited for)")
    p.add_argument("--show", action="store_true",
                   help="video source: the same drawing in an OpenCV window (needs a display)")
    p.add_argument("--events", default=None, metavar="FILE.jsonl",
                   help="write every decision and identity change as one JSON line (track, time, identity, "
                        "confidence, score; schema in stream/events.py and docs/live.md), flushed per line")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from stream.config import load_config
    from stream.dashboard import exit_status, print_summary, run_until_stopped, sigterm_stops
    from stream.errors import GalleryError
    from stream.options import DEFAULT_GALLERY
    from stream.pipeline import Pipeline
    from stream.producer import check_source

    cfg = load_config(args.config, device=args.device, fps=args.fps)
    check_source(args.source, open_it=True)
    overlay = None
    if args.overlay or args.show:
        from pose.overlay import OverlayWriter
        from stream.errors import SourceError
        from stream.overlay import check_show
        from stream.producer import has_images

        if not has_images(args.source):
            raise SourceError(f"{args.source}: --overlay/--show draw on video frames; give a video file or camera")
        check_show(args.show)
        if args.overlay:
            OverlayWriter(args.overlay)  # a bad file name is a one-line error before start-up (opens nothing)
        overlay = {"path": args.overlay, "show": bool(args.show)}
    from stream.gallery import gallery_exists, is_url, open_gallery

    gallery = (args.gallery if is_url(args.gallery) else Path(args.gallery)) if args.gallery else None
    if gallery is not None and not gallery_exists(gallery):
        if args.gallery != DEFAULT_GALLERY:
            raise GalleryError(f"{gallery}: no such gallery (enrol someone first: cagereid enroll --gallery {gallery})")
        gallery = None  # no default gallery yet: everybody is unknown
    if gallery is not None:
        with open_gallery(gallery, create=False, readonly=True):  # a bad gallery is a one-line error before start-up
            pass
    console = Console()
    events = None
    if args.events:
        from stream.events import EventLog

        events = EventLog(args.events)
    with sigterm_stops():
        pipe = Pipeline(cfg, args.source, model=args.model, gallery=gallery, overlay=overlay)
        if events is not None:
            pipe.decision_listeners.append(events)
        pipe.state.title = "cagereid live"
        reason, stopped = run_until_stopped(pipe, args.duration, not args.no_dashboard, console, events)
    print_summary(pipe.state, console, stopped)
    console.print(f"stopped: {reason}", markup=False)
    if reason.startswith("failed"):
        import sys

        print(f"error: {reason[len('failed: '):]}", file=sys.stderr)
    return exit_status(reason)
