"""`cagereid report DIR...`: one comparison table over several `cagereid evaluate` runs; `--training RUN`:
the loss curves of a training run (its ``log.jsonl``) as a PNG."""
from __future__ import annotations

import argparse

HELP = "Compare several evaluation runs (Markdown table), or plot a training run's loss curves (--training)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Examples:  cagereid report runs/a runs/b --out compare.md   |   "
                     "cagereid report --training runs/ucalgary/cage_run1_seed0  (writes training.png there)")
    parser.add_argument("dirs", nargs="*", metavar="DIR", help="run folders (or report.json files) of `cagereid evaluate`")
    parser.add_argument("--training", default=None, metavar="RUN_DIR",
                        help="plot the loss curves of this `cagereid train` run folder (or its log.jsonl) instead")
    parser.add_argument("--protocol", choices=("p1", "p2"), default=None, help="only this protocol (default: both)")
    parser.add_argument("--level", choices=("window", "sequence"), default=None, help="only this level (default: both)")
    parser.add_argument("--distance", choices=("euclidean", "cosine"), default="euclidean", help="P2 distance shown")
    parser.add_argument("--out", default=None, help="also write the table to this Markdown file (with --training: "
                        "the PNG, default RUN_DIR/training.png)")


def run(args: argparse.Namespace) -> int:
    from cages.io import write_text
    from offline.errors import OfflineError
    from offline.report import compare

    if args.training:
        if args.dirs:
            raise OfflineError("give either evaluation run folders or --training RUN_DIR, not both")
        from offline.plots import plot_training

        print(plot_training(args.training, args.out))
        return 0
    if not args.dirs:
        raise OfflineError("give evaluation run folders to compare, or --training RUN_DIR")
    table = compare(args.dirs, args.protocol, args.level, args.distance)
    print(table)
    if args.out:
        write_text(args.out, table)
    return 0
