"""`cagereid serve`: windower + identify workers + supervisor for cameras anywhere (`cagereid camera`)."""
from __future__ import annotations

import argparse

HELP = ("Serve several cameras: windows, CAGEs and gallery matching for every `cagereid camera` that connects, "
        "with a terminal dashboard")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from stream.options import DEFAULT_GALLERY, add_common

    p.add_argument("--bind", default="127.0.0.1:5555", metavar="HOST:PORT",
                   help="where cameras connect (default: 127.0.0.1:5555; without --keys only a 127.x address)")
    p.add_argument("--keys", default=None, metavar="DIR|FILE",
                   help="serve's secret key (SERVE.key_secret or a folder holding one; cagereid keys makes it)")
    p.add_argument("--allow", default=None, metavar="DIR",
                   help="folder of camera public keys (NAME.key each): only these cameras are admitted, each under "
                        "its file's NAME; any other key is refused and counted")
    p.add_argument("--dashboard-bind", default=None, metavar="HOST:PORT",
                   help="also let remote dashboards attach here (cagereid dashboard --connect); with --keys only "
                        "the viewer keys in --viewers, without keys a 127.x address only (default: none)")
    p.add_argument("--viewers", default=None, metavar="DIR",
                   help="folder of viewer public keys (NAME.key) admitted on --dashboard-bind (with --keys)")
    p.add_argument("--workers", default="1", help="identify workers (a track always goes to the same one; with "
                   "CUDA, worker k on GPU k mod count), or auto: one per GPU (1 without CUDA) (default: 1)")
    p.add_argument("--gallery", default=DEFAULT_GALLERY,
                   help=f"gallery shared by every worker and serve process (default: {DEFAULT_GALLERY}, created "
                        "when missing: visitors are enrolled in it)")
    p.add_argument("--no-visitors", action="store_true",
                   help="no anonymous visitor ids for unknown walkers (they stay unknown)")
    add_common(p)
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: until "
                   "Ctrl-C or SIGTERM)")
    p.add_argument("--no-dashboard", action="store_true", help="no full-screen view; print a summary at the end")
    p.add_argument("--events", default=None, metavar="FILE.jsonl",
                   help="append every decision, identity change and handover as one JSON line (schema in "
                        "stream/events.py; lines older than retention_s are deleted)")


def _bind_address(text: str, keyed: bool, flag: str = "--bind") -> str:
    from stream.camera import is_loopback, parse_address
    from stream.errors import StreamError

    host, port = parse_address(text, flag)
    if not keyed and not is_loopback(host):
        raise StreamError(f"{flag} {text}: without --keys/--allow serve binds 127.0.0.1 only (skeletons are "
                          "biometric data; make keys with cagereid keys, see README 'Several cameras')")
    host = "*" if host in ("0.0.0.0", "*") else host
    return f"tcp://{host}:{port}"


def _workers(text: str) -> int:
    from stream.errors import StreamError
    from stream.messages import MAX_WORKERS

    if text == "auto":
        import torch

        return max(1, min(MAX_WORKERS, torch.cuda.device_count() if torch.cuda.is_available() else 1))
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise StreamError(f"--workers {text}: give 1..{MAX_WORKERS} or auto (one per GPU)")
    return int(text)


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console

    from stream.config import load_config
    from stream.dashboard import exit_status, print_summary, run_until_stopped, sigterm_stops
    from stream.errors import StreamError
    from stream.pipeline import Pipeline

    if (args.keys is None) != (args.allow is None):
        raise StreamError("--keys and --allow go together (serve's secret key and the folder of camera public keys)")
    cfg = load_config(args.config, device=args.device)
    workers = _workers(args.workers)
    bind = _bind_address(args.bind, args.keys is not None)
    camera_keys = monitor_keys = None
    monitor_bind = _bind_address(args.dashboard_bind, args.keys is not None, "--dashboard-bind") \
        if args.dashboard_bind else None
    if args.viewers and not (args.keys and args.dashboard_bind):
        raise StreamError("--viewers goes with --keys and --dashboard-bind")
    if args.keys:
        from stream.security import load_allowed, load_keypair

        _, server = load_keypair(args.keys)
        camera_keys = (server, load_allowed(args.allow))
        if monitor_bind:
            if not args.viewers:
                raise StreamError("--dashboard-bind with --keys needs --viewers DIR (the viewer public keys to admit)")
            monitor_keys = (server, load_allowed(args.viewers))
    gallery = args.gallery
    if gallery:  # created when missing (visitors are enrolled in it); a bad gallery is one line before start-up
        from stream.visitors import _open

        _open(gallery).close()
    console = Console()
    events = None
    if args.events:
        from stream.events import EventLog

        events = EventLog(args.events, retention_s=cfg.retention_s)
    with sigterm_stops():
        pipe = Pipeline(cfg, None, model=args.model, gallery=gallery, workers=workers, frames_bind=bind,
                        camera_keys=camera_keys, visitors=not args.no_visitors, monitor_bind=monitor_bind,
                        monitor_keys=monitor_keys)
        if events is not None:
            pipe.decision_listeners.append(events)
            pipe.handover_listeners.append(events.handover)
        pipe.state.title = "cagereid serve"

        def started() -> None:
            where = pipe.addr["frames"]
            print(f"serve: cameras connect to {where} ({'CURVE, ' + str(len(camera_keys[1])) + ' camera keys' if camera_keys else 'plain TCP, this machine only'}); "
                  f"{workers} identify worker(s); gallery {gallery}"
                  + (f"; dashboards attach at {pipe.addr['monitor']}" if monitor_bind else ""),
                  file=sys.stderr, flush=True)

        reason, stopped = run_until_stopped(pipe, args.duration, not args.no_dashboard, console, events, started)
    print_summary(pipe.state, console, stopped)
    refused, keys = pipe.state.refused
    console.print(f"cameras {len(pipe.state.cameras())}   refused camera handshakes {refused} ({keys} unknown keys)   "
                  f"handovers {pipe.state.handover_count}", markup=False)
    console.print(f"stopped: {reason}", markup=False)
    if reason.startswith("failed"):
        print(f"error: {reason[len('failed: '):]}", file=sys.stderr)
    return exit_status(reason)
