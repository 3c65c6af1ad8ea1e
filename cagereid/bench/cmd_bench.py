"""`cagereid bench WHAT`: speed and memory tables (never part of the tests)."""
from __future__ import annotations

import argparse
import importlib

HELP = ("Benchmarks: training throughput, live pipeline latency, pose extraction speed, missing-joint policies "
        "(prints tables)")

# what -> module exposing add_arguments(parser) and run(args)
BENCHES = {
    "train": "cagereid.bench.train",
    "stream": "cagereid.bench.stream",
    "pose": "cagereid.bench.pose",
    "lift": "cagereid.bench.lift",
    "missing-joints": "cagereid.bench.missing",
    "gallery": "cagereid.bench.gallery",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    for name, modname in BENCHES.items():
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError:
            continue
        q = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(q)
        from cagereid.flags import add_quiet

        add_quiet(q, "no status lines on stderr (the tables are still printed)")
        q.add_argument("--json", action="store_true", help="print the tables as one JSON document on stdout "
                       "({bench, tables: [{title, columns, rows}]}); the human-readable output goes to stderr")
        q.set_defaults(_bench_run=mod.run)


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "json", False):
        return int(args._bench_run(args) or 0)
    import contextlib
    import json
    import sys

    from cagereid.bench import collecting

    with collecting() as tables, contextlib.redirect_stdout(sys.stderr):
        rc = int(args._bench_run(args) or 0)
    print(json.dumps({"bench": args.what, "tables": tables}, indent=2))
    return rc
