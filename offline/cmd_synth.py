"""`cagereid synth`: write a synthetic dataset in the exact CAGE layout, or check a dataset folder."""
from __future__ import annotations

import argparse

HELP = "Write a synthetic dataset in the CAGE pre-processed layout (or --check a dataset folder)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("examples:  cagereid synth --dataset BIWI --length 6 --identities 20 --out Datasets\n"
                     "           cagereid synth --dataset CASIA_B --view 5 --out Datasets   (f defaults to 20)\n"
                     "           cagereid synth --check Datasets   (validate every dataset found there)")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    from offline.datasets.registry import SYNTH, dataset_arg

    parser.add_argument("--dataset", default=None, type=dataset_arg(SYNTH + ("ALL",)), metavar="NAME",
                        help="BIWI, IAS, KGBD, KS20, CASIA_B (CVE, per view), CASIA_B_match (CME) or ALL "
                             "(every dataset; all KS20 and CASIA_B views unless --view). Required to write; "
                             "with --check it restricts the check")
    parser.add_argument("--length", "-f", type=int, default=None, metavar="F",
                        help="window length f in frames (default 6; CASIA_B 20, CASIA_B_match 50)")
    parser.add_argument("--identities", type=int, default=20, metavar="N", help="number of people (default 20)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="the Datasets/ folder to write into (DIR/<dataset>/<f>/...)")
    parser.add_argument("--view", type=int, default=None, metavar="V",
                        help="KS20 cross-view split 0..4 (optional), CASIA_B view 0..10 = 18*V degrees")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default 0)")
    parser.add_argument("--frames", type=int, default=None, metavar="T",
                        help="frames per synthetic walk (default 60 Kinect sets, 45 KS20, 60 CASIA_B, "
                             "110 CASIA_B_match, at least 2f + rounds)")
    parser.add_argument("--noise", type=float, default=None, metavar="M",
                        help="sensor noise sd per joint coordinate in metres (default 0.01)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="offset rounds of the window grid, stacked offset-major (default 10, as released)")
    parser.add_argument("--monocular", action="store_true",
                        help="Kinect datasets: walks in every direction, degraded like monocular MediaPipe output "
                             "(hip-centred, depth noise, far arm hidden, far leg in bursts) and filled like live "
                             "windows: training data for the live domain")
    parser.add_argument("--check", default=None, metavar="DIR",
                        help="read a Datasets/ folder back (all validation) and print a summary instead of "
                             "writing; exits non-zero with a one-line error naming the bad file")
    parser.add_argument("--lenient", action="store_true",
                        help="with --check: derive a missing/non-reversed target with a warning instead of failing")
    parser.add_argument("--json", action="store_true",
                        help="with --check: print the summary as JSON on stdout for scripts ({root, datasets: "
                             "[{dataset, view, split, windows, f, J, people, recordings, folder}], warnings}); "
                             "a bad dataset is still a one-line error on stderr and exit status 2")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from offline.errors import OfflineError

    console = Console()
    if args.check is not None:
        return _check(args, console)
    if args.json:
        raise OfflineError("--json goes with --check DIR")
    from offline.synth import synth_all_targets, synth_dataset

    if args.dataset is None or args.out is None:
        raise OfflineError("give --dataset and --out to write a dataset (or --check DIR to read one)")
    from offline.datasets.cage_layout import DEFAULT_F

    jobs = []
    for ds, view in synth_all_targets(args.dataset, args.view):
        if args.dataset == "ALL" and args.length is not None and ds.startswith("CASIA_B"):
            f = DEFAULT_F[ds]  # one --length cannot suit both Kinect (4..10) and CASIA (20..70) windows
        else:
            f = DEFAULT_F[ds] if args.length is None else args.length
        if args.frames is not None and args.frames < f:  # check every target before writing anything
            raise OfflineError(f"--frames {args.frames} is shorter than one window of {ds} (f={f})")
        jobs.append((ds, view, f))
    rows = []
    for ds, view, f in jobs:
        splits = synth_dataset(args.out, ds, f=f, identities=args.identities, seed=args.seed, view=view,
                               frames=args.frames, noise=args.noise, rounds=args.rounds, monocular=args.monocular)
        rows += [(ds, view, split, ws) for split, ws in splits.items()]
    console.print(_table(rows, f"synthetic datasets written to {args.out}", args.out))
    return 0


def _check(args: argparse.Namespace, console) -> int:
    import warnings

    from offline.datasets.base import DatasetError
    from offline.datasets.cage_layout import DatasetWarning, find_cage_datasets, read_cage_dataset

    dataset = None if args.dataset in (None, "ALL") else args.dataset
    found = find_cage_datasets(args.check, dataset, args.length)
    if args.view is not None:
        found = [t for t in found if t[2] == args.view]
    if not found:
        what = dataset or "CAGE-layout dataset"
        raise DatasetError(f"{args.check}: no {what} found (expected {args.check}/<dataset>/<f>/"
                           f"<dataset>_train_npy_data/...{'' if args.length is None else f' with f={args.length}'})")
    rows = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DatasetWarning)
        for ds, f, view in found:
            splits = read_cage_dataset(args.check, ds, f, view=view, strict=not args.lenient)
            rows += [(ds, view, split, ws) for split, ws in splits.items()]
    if args.json:
        import json

        print(json.dumps({"root": str(args.check), "datasets": _records(rows, args.check),
                          "warnings": [str(w.message) for w in caught]}, indent=2))
        return 0
    console.print(_table(rows, f"{args.check}: {len(found)} dataset folder(s) read and validated", args.check))
    for w in caught:
        console.print(f"warning: {w.message}", markup=False, highlight=False)
    return 0


def _records(rows, root: str) -> list[dict]:
    """One dict per (dataset, view, split): what the summary table shows (``recordings`` None when unknown)."""
    import numpy as np

    from offline.datasets.cage_layout import split_files

    out = []
    for ds, view, split, ws in rows:
        rec = ws.recording
        out.append({"dataset": ds, "view": view, "split": split, "windows": int(ws.n), "f": int(ws.f), "J": int(ws.J),
                    "people": int(len(np.unique(ws.pids))),
                    "recordings": None if (rec < 0).all() else int(len(np.unique(rec))),
                    "folder": _relative(split_files(root, ds, ws.f, split, view).folder, root)})
    return out


def _table(rows, title: str, root: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    cols = ("dataset", "view", "split", "windows", "f", "J", "people", "recordings", "folder")
    for col in cols:
        table.add_column(col, justify="right" if col in ("windows", "f", "J", "people", "recordings") else "left")
    for r in _records(rows, root):
        table.add_row(*("-" if r[c] is None and c == "view" else "?" if r[c] is None else str(r[c]) for c in cols))
    return table


def _relative(path, root) -> str:
    from pathlib import Path

    try:
        return Path(path).relative_to(Path(root)).as_posix()
    except ValueError:
        return str(path)
