"""`cagereid camera`: the pose producer on any machine, feeding a `cagereid serve` over the network."""
from __future__ import annotations

import argparse

HELP = "A camera for cagereid serve: pose from a camera/video/recording, skeletons sent to serve (CURVE with keys)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="0", help="camera index (0), video file, skeleton recording (.npz from "
                   "`cagereid extract`) or synthetic[:people=8,ids=0-4,...] (default: 0)")
    p.add_argument("--connect", required=True, metavar="HOST:PORT", help="serve's camera address (its --bind)")
    p.add_argument("--name", required=True, help="this camera's name, shown with its tracks (with keys: the name "
                   "of its key, NAME.key in serve's --allow folder)")
    p.add_argument("--keys", default=None, metavar="DIR|FILE", help="this camera's secret key (NAME.key_secret, or "
                   "a folder holding one; made by cagereid keys); without it: this machine only, no encryption")
    p.add_argument("--server-key", default=None, metavar="FILE", help="serve's public key (SERVE.key)")
    p.add_argument("--config", default=None, help="stream settings: a YAML file or a shipped config name "
                   "(default: stream)")
    p.add_argument("--layout", default=None, help="joint layout sent (the serve model's; default from the config)")
    p.add_argument("--fps", type=float, default=None, help="playback rate of synthetic/recorded sources")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: until the "
                   "source ends, or Ctrl-C)")
    p.add_argument("--quiet", action="store_true", help="only connection events and errors on stderr")


def run(args: argparse.Namespace) -> int:
    from stream.camera import run_camera
    from stream.config import load_config
    from stream.errors import StreamError
    from stream.producer import check_source

    if (args.keys is None) != (args.server_key is None):
        raise StreamError("--keys and --server-key go together (this camera's secret key and serve's public key)")
    cfg = load_config(args.config, fps=args.fps, layout=args.layout)
    check_source(args.source, open_it=True)
    keys = None
    if args.keys:
        from stream.security import load_keypair, load_public

        _, kp = load_keypair(args.keys)
        keys = (kp, load_public(args.server_key))
    return run_camera(cfg, args.source, args.connect, args.name, keys, status_every_s=0 if args.quiet else 10.0,
                      duration=args.duration)
