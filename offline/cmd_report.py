"""`cagereid report DIR...`: one comparison table over several `cagereid evaluate` runs."""
from __future__ import annotations

import argparse

HELP = "Gather the report.json of several evaluation runs into one comparison table (Markdown)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run folders (or report.json files) of `cagereid evaluate`")
    parser.add_argument("--protocol", choices=("p1", "p2"), default=None, help="only this protocol (default: both)")
    parser.add_argument("--level", choices=("window", "sequence"), default=None, help="only this level (default: both)")
    parser.add_argument("--distance", choices=("euclidean", "cosine"), default="euclidean", help="P2 distance shown")
    parser.add_argument("--out", default=None, help="also write the table to this Markdown file")


def run(args: argparse.Namespace) -> int:
    from cages.io import write_text
    from offline.report import compare

    table = compare(args.dirs, args.protocol, args.level, args.distance)
    print(table)
    if args.out:
        write_text(args.out, table)
    return 0
