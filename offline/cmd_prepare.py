"""`cagereid prepare`: raw benchmark recordings -> windows in the CAGE or the retrieval (P2) layout."""
from __future__ import annotations

import argparse

HELP = "Build BIWI/IAS/KGBD/KS20/UCalgary windows from the raw recordings (CAGE or P2 layout, seeded splits)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cagereid.flags import add_quiet, alias
    from offline.datasets.registry import RAW, dataset_arg

    parser.epilog = ("Example: cagereid prepare --dataset KGBD --data-root ~/data --length 4 6 8 10 --layout p2 "
                     "--seed 0 --out Datasets/  (writes Datasets/KGBD/<f>/..., splits.json, prepare_p2.json; "
                     "a rerun with the same arguments does nothing)")
    parser.add_argument("--dataset", type=dataset_arg(RAW), required=True, metavar="|".join(RAW),
                        help="which benchmark (case-insensitive)")
    parser.add_argument("--data-root", default=None, metavar="DIR",
                        help="(required) folder holding the raw dataset as its owners ship it (the folder itself or its parent; "
                             "UCALGARY: the ucalgary_gait folder)")
    parser.add_argument("--length", type=int, nargs="+", default=[6], metavar="F",
                        help="window length(s) in frames (default 6; the benchmarks use 4 6 8 10)")
    parser.add_argument("--layout", choices=("p2", "cage", "both"), default="p2",
                        help="p2: retrieval layout train_npy_data/test_npy_data (DATA_PREP §4); cage: the CAGE "
                             "paper's layout with reversed targets (CAGE_SPEC §1.1); both (default p2)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random KGBD/KS20 gallery/probe choices, written to splits.json (default 0)")
    parser.add_argument("--out", default="Datasets", metavar="DIR", help="output Datasets/ folder (default Datasets)")
    parser.add_argument("--trim", type=int, default=None,
                        help="frames removed at each end of every recording (default 10; UCALGARY 0)")
    parser.add_argument("--original-trim", action="store_true",
                        help="reproduce the original script: IAS training recordings trimmed at the start only")
    parser.add_argument("--rounds", type=int, default=10,
                        help="CAGE layout: offset rounds 0..R-1 of non-overlapping windows (default 10)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the output is up to date")
    alias(parser, "--raw-root", "--data-root", "data_root", metavar="DIR")
    add_quiet(parser, "no progress bar, summary only")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from offline.errors import OfflineError
    from offline.prepare import PrepareConfig, prepare

    if args.data_root is None:
        raise OfflineError("give the raw dataset folder with --data-root DIR")
    console = Console()
    layouts = ("p2", "cage") if args.layout == "both" else (args.layout,)
    if args.layout == "both" and args.dataset == "UCALGARY":
        layouts = ("p2",)
        console.print("UCALGARY has no CAGE layout: preparing the p2 layout only")
    cache: dict = {}  # the raw tree is parsed once for every f and layout
    for f in args.length:
        for layout in layouts:
            cfg = PrepareConfig(dataset=args.dataset, raw_root=args.data_root, f=f, layout=layout, seed=args.seed,
                                out=args.out, trim=args.trim, original_trim=args.original_trim, rounds=args.rounds,
                                force=args.force)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          transient=True, disable=args.quiet, console=Console(stderr=True)) as bar:
                tasks: dict[str, int] = {}

                def progress(stage: str, advance: int, total: int | None) -> None:
                    if stage not in tasks:
                        tasks[stage] = bar.add_task(f"{args.dataset} f={f} {layout}: {stage}", total=total)
                    if total is not None:
                        bar.update(tasks[stage], total=total)
                    if advance:
                        bar.advance(tasks[stage], advance)

                result = prepare(cfg, progress=progress, cache=cache)
            where = result.out_dir
            if result.up_to_date:
                console.print(f"{args.dataset} f={f} {layout}: up to date in {where} (use --force to rebuild)")
                continue
            table = Table(title=f"{args.dataset} f={f}, {layout} layout, seed {args.seed} -> {where}")
            for col in ("split", "windows", "people", "recordings"):
                table.add_column(col, justify="left" if col == "split" else "right")
            for name, w in result.manifest["windows"].items():
                table.add_row(name, str(w["N"]), str(w["people"]), str(w["recordings"]))
            console.print(table)
            for path, reason in result.skipped:
                console.print(f"skipped {path}: {reason}", markup=False, highlight=False, soft_wrap=True)
            for note in result.notes:
                console.print(note, markup=False, highlight=False, soft_wrap=True)
            if result.skipped:
                console.print(f"{len(result.skipped)} malformed file(s) skipped "
                              f"(listed in {where}/prepare_{layout}.json)",
                              markup=False, highlight=False, soft_wrap=True)
    return 0
