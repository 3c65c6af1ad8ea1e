"""`cagereid` command line: one subcommand per job, each implemented in its own module.

Every command module exposes three names:

* ``HELP``: a one-line description (shown by ``cagereid --help``),
* ``add_arguments(parser)``: declares its flags (argparse only, no heavy imports at module level),
* ``run(args) -> int``: does the work and returns the exit status.

Heavy imports (torch, mediapipe, zmq) live inside ``run`` so that ``--help`` stays instant.
An exception whose class carries the marker ``user_error = True`` (the bases `cages.config.ConfigError`,
`pose.errors.PoseError`, `offline.errors.OfflineError`, `stream.errors.StreamError` and everything derived from
them) becomes a one-line ``error: ...`` message and exit status 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> module implementing it. Order is the order shown by --help.
COMMANDS: dict[str, str] = {
    "demo": "stream.cmd_demo",
    "live": "stream.cmd_live",
    "serve": "stream.cmd_serve",
    "camera": "stream.cmd_camera",
    "keys": "stream.cmd_keys",
    "dashboard": "stream.cmd_dashboard",
    "enroll": "stream.cmd_enroll",
    "gallery": "stream.cmd_gallery",
    "soak": "stream.cmd_soak",
    "synth": "offline.cmd_synth",
    "prepare": "offline.cmd_prepare",
    "train": "offline.cmd_train",
    "evaluate": "offline.cmd_evaluate",
    "report": "offline.cmd_report",
    "extract": "pose.cmd_extract",
    "lift": "offline.cmd_lift",
    "casia-b": "offline.cmd_casia_b",
    "params": "offline.cmd_params",
    "bench": "cagereid.bench.cmd_bench",
}


def _available() -> dict[str, object]:
    mods = {}
    for name, modname in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            # A command whose module is not there yet (or whose optional dependency is missing)
            # is left out of the parser rather than breaking every other command.
            if exc.name and (modname.startswith(exc.name) or exc.name == modname):
                continue
            raise
    return mods


class _UsageError(Exception):
    """A bad flag: argparse's message, printed as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one ``error:`` line naming the command (and where its --help is), exit 2."""

    def error(self, message: str):
        raise _UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cagereid",
        description="Person re-identification from 3D skeletons with self-supervised gait "
        "encodings (CAGEs): live identification, training, evaluation, data preparation.",
    )
    from cagereid import __version__

    parser.add_argument("--version", action="version", version=f"cagereid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in _available().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for user-facing errors only
        if _is_user_error(exc):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


def _is_user_error(exc: BaseException) -> bool:
    # One marker, no list of names: `cages` and `pose` import nothing of ours, so each package's error base
    # carries the class attribute itself.
    return getattr(type(exc), "user_error", False) is True


if __name__ == "__main__":
    sys.exit(main())
