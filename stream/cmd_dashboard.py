"""`cagereid dashboard`: attach a dashboard to a running `cagereid serve` (this machine or another)."""
from __future__ import annotations

import argparse

HELP = "Watch a running cagereid serve from here: its tracks, cameras, handovers and health (remote dashboard)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connect", required=True, metavar="HOST:PORT", help="serve's --dashboard-bind address")
    p.add_argument("--keys", default=None, metavar="DIR|FILE", help="this viewer's secret key (NAME.key_secret; "
                   "its NAME.key must be in serve's --viewers folder); without it: this machine only")
    p.add_argument("--server-key", default=None, metavar="FILE", help="serve's public key (SERVE.key)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--no-dashboard", action="store_true", help="no full-screen view; print a summary at the end")


def run(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console

    from stream.dashboard import exit_status, print_summary, sigterm_stops
    from stream.errors import StreamError
    from stream.monitor import Monitor, watch

    if (args.keys is None) != (args.server_key is None):
        raise StreamError("--keys and --server-key go together (this viewer's secret key and serve's public key)")
    keys = None
    if args.keys:
        from stream.security import load_keypair, load_public

        keys = (load_keypair(args.keys)[1], load_public(args.server_key))
    console = Console()
    with sigterm_stops():
        mon = Monitor(args.connect, keys)
        try:
            reason = watch(mon, args.duration, not args.no_dashboard, console)
        finally:
            mon.close()
    print_summary(mon.state, console, time.time())
    console.print(f"stopped: {reason}", markup=False)
    return exit_status(reason)
