"""`cagereid train`: self-supervised CAGE encoders, CAGE extraction and the recognition network."""
from __future__ import annotations

import argparse

HELP = ("Train CAGE encoders without labels, extract CAGEs and train the recognition network (original flags); "
        "--tracks: adapt an encoder to a site's own unlabeled footage")

# Original flags keep their meaning; their defaults are those of train.py (shown in --help) unless a
# --config YAML sets them. Precedence: TrainConfig defaults < --config < explicit flags.


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cagereid.flags import add_quiet, alias
    from offline.datasets.registry import TRAINABLE, dataset_arg

    p.epilog = ("The original train.py flags --model (pretext task), --train_flag and --gpu are kept as documented "
                "aliases. Example: cagereid train --dataset BIWI --length 6 --data-root Datasets --out models/biwi. "
                "Adapting to a site without labels: cagereid train --tracks TRACKS_DIR --out models/site "
                "[--init DIR] [--epochs N] (then live/enroll/evaluate --model models/site)")
    s = p.add_argument_group("label-free adaptation to a site (--tracks)")
    s.add_argument("--tracks", nargs="+", default=None, metavar="FILES|DIR",
                   help="fine-tune the --init encoder (default: the shipped live model) on every track of these "
                        "tracks files (.npz from `cagereid extract`, or folders of them): positives are windows of "
                        "the same track, no labels, no recognition network; writes an encoder model folder to --out "
                        "(default models/adapted). Keeps the init model's layout, window length and width; "
                        "default 20 epochs; --config/--epochs/--batch-size/--seed/--device override")
    g = p.add_argument_group("what to train (the original train.py flags)")
    g.add_argument("--dataset", type=dataset_arg(TRAINABLE), default=None, metavar="|".join(TRAINABLE),
                   help="dataset, any case (default BIWI)")
    g.add_argument("--length", type=int, default=None, help="window length f: 4|6|8|10 (CASIA_B 20|30|40) (default 6)")
    g.add_argument("--attention", choices=["LA", "BA"], default=None, help="locality-aware or basic attention (default LA)")
    g.add_argument("--pretext", choices=["rev_rec", "prediction", "sorting", "rev_rec_plus"], default=None,
                   help="pretext task(s) (default rev_rec)")
    alias(g, "--model", "--pretext", "pretext", warn=False, metavar="PRETEXT",
          show="the original's name of --pretext")
    g.add_argument("--t", type=float, default=None,
                   help="contrastive temperature (default: 0.1; KGBD 0.5; CASIA_B 0.15). Honoured in improved mode; "
                        "--faithful forces the original's values except for CASIA_B")
    g.add_argument("--rn-only", action="store_true",
                   help="load the encoders already in --out and train the recognition network only")
    alias(g, "--train_flag", "--rn-only", "rn_only", type=int, warn=False, metavar="1|0",
          convert=lambda v: _train_flag(v), show="the original's flag: 1 = train everything (default), 0 = --rn-only")
    g.add_argument("--view", type=int, default=None, help="KS20 cross-view split 0..4 / CASIA_B view 0..10")
    g.add_argument("--gpu", type=str, default=None, help="CUDA device index (the original's flag; = --device cuda:N)")
    n = p.add_argument_group("data, output, schedule")
    n.add_argument("--config", default=None,
                   help="YAML of TrainConfig fields: a file or a shipped config name, e.g. train_ucalgary")
    n.add_argument("--data-root", default="Datasets",
                   help="folder holding <DATASET>/<f>/... (CAGE layout); UCALGARY: the ucalgary_gait folder "
                        "(default: Datasets)")
    n.add_argument("--out", default=None, help="output folder (default models/<dataset>_<attention>_<pretext>_<f>_<mode>)")
    n.add_argument("--init", default=None, metavar="DIR",
                   help="start the encoders from this model folder (fine-tuning) instead of random weights; it must "
                        "have the same layout, window length and architecture (with --tracks: default the shipped "
                        "live model)")
    n.add_argument("--faithful", action="store_true", help="reproduce the original code's choices (CAGE_SPEC §10 F)")
    n.add_argument("--decoder-input", choices=["zero", "teacher"], default=None,
                   help="decoder inputs: zero (original) or teacher forcing (0, y_1..y_{f-1})")
    n.add_argument("--epochs", type=int, default=None, help="encoder epochs (default: original, e.g. BIWI 400)")
    n.add_argument("--rn-epochs", type=int, default=None, help="RN epochs (default: original, e.g. BIWI 300; improved mode at most 100)")
    n.add_argument("--batch-size", type=int, default=None, help="encoder batch size (default 128)")
    n.add_argument("--encoder-runs", choices=["all", "run1"], default="all",
                   help="UCALGARY: encoder trained (without labels) on all runs (default) or on Run1 only")
    n.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default auto)")
    n.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    n.add_argument("--deterministic", action="store_true", help="deterministic kernels (slower on CUDA)")
    n.add_argument("--resume", action="store_true", help="continue an interrupted encoder training in --out")
    add_quiet(n)


def _train_flag(value: int) -> bool:
    if value not in (0, 1):
        raise argparse.ArgumentTypeError(f"--train_flag must be 1 or 0 (got {value})")
    return value == 0


def build_config(args: argparse.Namespace):
    from offline.training.config import build_config

    device = args.device if args.device else (f"cuda:{args.gpu}" if args.gpu not in (None, "") else None)
    return build_config(args.config, dataset=args.dataset, f=args.length, attention=args.attention,
                        model=args.pretext, t=args.t, view=args.view, decoder_input=args.decoder_input,
                        epochs=args.epochs, rn_epochs=args.rn_epochs, batch_size=args.batch_size, seed=args.seed,
                        device=device, mode="faithful" if args.faithful else None,
                        deterministic=True if args.deterministic else None)


def run(args: argparse.Namespace) -> int:
    import sys

    if args.tracks is not None:
        return run_tracks(args)
    from offline.training.run import run_training

    cfg = build_config(args)
    r = cfg.resolved()
    out = args.out or f"models/{r.dataset}_{r.attention}_{r.model}_{r.f}_{r.mode}"
    summary = run_training(cfg, args.data_root, out, train_flag=0 if args.rn_only else 1, resume=args.resume,
                           progress=not args.quiet, encoder_runs=args.encoder_runs, init=args.init,
                           command="cagereid " + " ".join(sys.argv[1:]))
    if not summary:  # torchrun, rank > 0: rank 0 reports
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary['dataset']} f={summary['f']} {summary['mode']} — window Rank-1 (RN)")
    table.add_column("probe")
    table.add_column("windows", justify="right")
    table.add_column("Rank-1 (selected)", justify="right")
    table.add_column("Rank-1 (last epoch)", justify="right")
    for k, m in summary["metrics"].items():
        last = m["rank1_last_epoch"]
        table.add_row(k, str(m["windows"]), f"{100 * m['rank1']:.1f}", "-" if last is None else f"{100 * last:.1f}")
    console = Console()
    console.print(table)
    console.print(f"RN epoch: {summary['rn_selection']} = {summary['selected_epoch']}; models in {out}")
    return 0


def _tracks_command(args: argparse.Namespace, out: str) -> str:
    """The ``cagereid train --tracks`` command line that reproduces this run (recorded in the model's metadata)."""
    import shlex

    parts = ["cagereid", "train", "--tracks", *args.tracks, "--out", out]
    for flag, v in (("--init", args.init), ("--config", args.config), ("--epochs", args.epochs),
                    ("--batch-size", args.batch_size), ("--seed", args.seed), ("--t", args.t),
                    ("--decoder-input", args.decoder_input), ("--device", args.device)):
        if v is not None:
            parts += [flag, str(v)]
    parts += [flag for flag, on in (("--deterministic", args.deterministic), ("--resume", args.resume)) if on]
    return " ".join(shlex.quote(str(p)) for p in parts)


def run_tracks(args: argparse.Namespace) -> int:
    """``cagereid train --tracks``: label-free adaptation (`offline.training.adapt`)."""
    from offline.errors import OfflineError
    from offline.training.adapt import adapt_to_tracks

    other = [flag for flag, v in (("--dataset", args.dataset), ("--length", args.length), ("--view", args.view),
                                  ("--rn-only", args.rn_only or None), ("--rn-epochs", args.rn_epochs),
                                  ("--faithful", args.faithful or None), ("--pretext", args.pretext),
                                  ("--attention", args.attention)) if v is not None]
    if other:
        raise OfflineError(f"--tracks adapts the --init model as it is; {', '.join(other)} cannot be used with it")
    device = args.device if args.device else (f"cuda:{args.gpu}" if args.gpu not in (None, "") else None)
    out = args.out or "models/adapted"
    summary = adapt_to_tracks(args.tracks, out, init=args.init, config=args.config, progress=not args.quiet,
                              resume=args.resume, command=_tracks_command(args, out),
                              epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, device=device,
                              t=args.t, decoder_input=args.decoder_input,
                              deterministic=True if args.deterministic else None)
    print(f"adapted encoder in {summary['out']}: {summary['windows']} windows of {summary['tracks']} tracks "
          f"({summary['train_windows']} train, {summary['val_windows']} validation), loss {summary['first_loss']:.4g} "
          f"-> {summary['final_loss']:.4g}, kept {summary['checkpoint']}, {summary['seconds']:.0f} s. "
          f"Use it with --model {summary['out']}")
    return 0
