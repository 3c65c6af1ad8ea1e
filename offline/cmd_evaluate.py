"""`cagereid evaluate`: CAGEs next to raw-kNN and D13-kNN on the same splits, P1 and/or P2, report + plots."""
from __future__ import annotations

import argparse

HELP = "Evaluate CAGEs and the raw/D13 kNN baselines (P1 classifier and P2 retrieval protocols); write a report"

METHODS = ("cage", "raw-kNN", "D13-kNN")
DISTANCES = ("euclidean", "cosine")


def _csv(choices: tuple[str, ...], what: str):
    """argparse type: a comma-separated subset of ``choices``."""
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(x.strip() for x in text.split(",") if x.strip())
        bad = [x for x in items if x not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(bad) or repr(text)} "
                                             f"(use a comma-separated subset of {', '.join(choices)})")
        return items
    parse.__name__ = what
    return parse


def _people(text: str) -> tuple[int, ...]:
    try:
        people = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        people = ()
    if not people:
        raise argparse.ArgumentTypeError(f"expected subject numbers like 1,3,5 (got {text!r})")
    return people


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1 (got {text!r})")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cagereid.flags import add_quiet, alias
    from offline.datasets.registry import NAMES, dataset_arg

    parser.epilog = ("Examples:  cagereid evaluate --dataset UCALGARY --data-root ../shared/data/ucalgary_gait "
                     "--length 6 --protocol both --seeds 3 --out runs/ucalgary   |   cagereid evaluate "
                     "--dataset BIWI --data-root Datasets --model BIWI_f6_rev_rec --models-root runs   |   "
                     "cagereid evaluate --tracks clips.csv --out runs/video.  "
                     "The original's --RN_dir is kept as another name of --model.")
    g = parser.add_argument_group("data")
    g.add_argument("--dataset", default=None, type=dataset_arg(NAMES), metavar="|".join(NAMES),
                   help="which benchmark (any case); or --tracks")
    g.add_argument("--tracks", default=None, metavar="MANIFEST",
                   help="video re-ID benchmark instead of --dataset: a CSV/YAML manifest of tracks files from "
                        "`cagereid extract` (clip, person, gallery|probe; CASIA-B names SSS-CC-NN-VVV need neither); "
                        "CAGEs: the shipped live model or --model DIR")
    g.add_argument("--missing-joints", choices=("hold", "mirror", "root"), default=None,
                   help="--tracks: how joints the pose estimator missed are filled (default: mirror, as live; "
                        "see cages/windows.py)")
    g.add_argument("--min-visibility", type=float, default=None,
                   help="--tracks: joints from MediaPipe landmarks below this visibility are missing (default: "
                        "the live threshold, 0)")
    g.add_argument("--data-root", default=None,
                   help="folder holding <DATASET>/<f>/... (CAGE or P2 layout; default Datasets); for UCALGARY the "
                        "ucalgary_gait folder (required)")
    g.add_argument("--layout", choices=("auto", "cage", "p2"), default="auto",
                   help="on-disk layout; auto (default): p2 when <root>/<DS>/<f>/train_npy_data exists")
    g.add_argument("--length", "-f", type=int, default=None, help="window length f (default: 6; CASIA_B 20; CASIA_B_match 50)")
    g.add_argument("--view", type=int, default=None, help="KS20 cross-view split 0-4 / CASIA_B CVE view 0-10 (default: all)")
    g = parser.add_argument_group("protocol")
    g.add_argument("--protocol", choices=("p1", "p2", "both"), default="both",
                   help="p1: classifier scores (RN / kNN class scores); p2: retrieval ranking (default both)")
    g.add_argument("--distance", type=_csv(DISTANCES, "distance"), default=DISTANCES,
                   help="P2 distances, comma-separated (default euclidean,cosine)")
    g.add_argument("--methods", type=_csv(METHODS, "method"), default=METHODS,
                   help="comma-separated subset of cage, raw-kNN, D13-kNN (default all three)")
    g.add_argument("--walk-pooling", choices=("mean", "nearest"), default=None,
                   help="P2 sequence level: mean = distance of the walks' mean embeddings; nearest = each probe "
                        "window's distance to the nearest window of the gallery walk, averaged over the walk "
                        "(default: nearest for UCALGARY, mean otherwise)")
    g.add_argument("--gallery-smoothing", type=float, default=None, metavar="A",
                   help="P2 window level: gallery windows become A*window + (1-A)*mean of their walk (gallery only; "
                        "1 = off; default: 0.5 for UCALGARY, 1 otherwise)")
    g.add_argument("--clean-tracking", action=argparse.BooleanOptionalAction, default=True,
                   help="UCALGARY: keep only the walker of each recording (cut at Kinect tracking switches; a "
                        "recording without a walk, e.g. sub7/Run1, is dropped and listed in the report) (default on)")
    g.add_argument("--rerank", action=argparse.BooleanOptionalAction, default=None,
                   help="UCALGARY: add rows of the trained CAGEs with k-reciprocal re-ranking (transductive: uses "
                        "the other probes) (default on for UCALGARY)")
    g = parser.add_argument_group("CAGE model")
    g.add_argument("--model", default=None, metavar="DIR",
                   help="evaluate this model folder of `cagereid train` (a path, or a name under --models-root)")
    alias(g, "--RN_dir", "--model", "model", warn=False, metavar="DIR", show="the original's name of --model")
    g.add_argument("--best_model", default=None, choices=("rev_rec", "rev_rec_plus", "prediction", "sorting"),
                   help="pick the newest run for --dataset/--length with this pretext task under --models-root")
    g.add_argument("--models-root", default="models", help="where `cagereid train` run folders live (default models)")
    g.add_argument("--train", action="store_true",
                   help="train CAGEs (encoder + RN) per seed on the training split instead of loading a run "
                        "(always on for UCALGARY unless --model/--best_model is given)")
    g.add_argument("--config", default=None, help="training config for --train and UCALGARY: a YAML file or a shipped "
                   "config name (UCALGARY default: eval_ucalgary; quicker: eval_ucalgary_quick)")
    g.add_argument("--epochs", type=int, default=None, help="override encoder epochs for --train")
    g.add_argument("--rn-epochs", type=int, default=None, help="override RN epochs for --train")
    g.add_argument("--encoder-data", type=_csv(("run1", "all"), "encoder data"), default=("run1", "all"),
                   help="UCALGARY: which windows train the encoder, comma-separated: run1 (no labels, Run1 only, "
                        "comparable to the peers) and/or all (transductive: every run, probes included) "
                        "(default run1,all)")
    g.add_argument("--runs", default=None,
                   help="UCALGARY: folder of the per-seed CAGE runs (finished ones are reused; default: --out)")
    g.add_argument("--seeds", type=_positive, default=1,
                   help="repeat training + evaluation with seeds 0..N-1; mean ± std (default 1)")
    g.add_argument("--ensemble", type=_positive, default=None, metavar="K",
                   help="UCALGARY: each seed's CAGEs are K encoders trained with other seeds (s, s+N, ... for "
                        "--seeds N; finished runs reused), embeddings concatenated so distances average "
                        "(default 1)")
    g.add_argument("--pretrain", choices=("synthetic", "none"), default=None,
                   help="UCALGARY: synthetic = pretrain one encoder without labels on synthetic walkers (180 "
                        "people x 3 walks, two of them limping; positives across a synthetic person's walks; in "
                        "<runs>/pretrain_synthetic_f<f>, reused) and fine-tune every encoder "
                        "from it; none = train from random weights (default: synthetic; improved mode only)")
    g.add_argument("--init-weight", type=float, default=None, metavar="W",
                   help="UCALGARY: each seed's CAGEs embed with the fine-tuned encoder and the (pretrained or --init) "
                        "encoder it started from; W = that encoder's share of the squared distance (default 0.667; "
                        "0 = the fine-tuned encoder alone, 1 = the starting encoder alone)")
    g.add_argument("--init", default=None, metavar="DIR",
                   help="UCALGARY: fine-tune every trained encoder from this model folder instead (same layout, "
                        "window length and width)")
    g.add_argument("--device", default="auto", help="torch device for CAGEs: auto (default), cpu, cuda, 0")
    g.add_argument("--readout", choices=("ap", "head"), default=None,
                   help="override the CAGE retrieval embedding: ap (mean AP row, the paper's) or head (contrastive "
                        "projections, the improved default); P2 only, the RN is unchanged (default: as trained)")
    g.add_argument("--bone-weight", type=float, default=None,
                   help="override the bone-length cue weight of the retrieval embedding (default: as trained)")
    g.add_argument("--people", type=_people, default=None,
                   help="UCALGARY, P2 only: evaluate on these subjects only, e.g. 1,3,5,7,9,12,14 (choose settings "
                        "on some people, check them on the others); the encoder still trains on every subject")
    g.add_argument("--subjects", type=_people, default=None,
                   help="UCALGARY: use only these subjects for everything (encoder, RN, gallery, probes), e.g. "
                        "1,3,5,7,9,12,14: one fold of a cross-validation by subject, as if only they were recorded")
    g = parser.add_argument_group("output")
    g.add_argument("--out", default=None, help="report folder (default: the model folder with --model, else "
                   "runs/eval_<DATASET>_f<f>)")
    add_quiet(g, "no status lines on stderr (the summary table is still printed)")


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys
    from pathlib import Path

    from offline import evaluate as E
    from offline.datasets import registry
    from offline.errors import OfflineError
    from offline.report import markdown, summarize, write_report

    if args.tracks:
        return run_tracks(args)
    if args.dataset is None:
        raise OfflineError("give --dataset NAME or --tracks MANIFEST")
    ds = args.dataset
    f = args.length or registry.get(ds).default_f
    protocols = ("p1", "p2") if args.protocol == "both" else (args.protocol,)
    methods = args.methods
    run_dir = None
    if "cage" in methods and args.model:
        run_dir = E.resolve_run_dir(args.model, args.models_root)
    elif "cage" in methods and args.best_model:
        run_dir = E.find_run(args.models_root, ds, f, args.best_model)
    out = Path(args.out) if args.out else (run_dir if run_dir is not None else Path("runs") / f"eval_{ds}_f{f}")
    say = E.progress_printer(args.quiet)
    base = E.UCALGARY_RETRIEVAL if ds == "UCALGARY" else E.PLAIN
    retrieval = _retrieval(args, base)
    common = dict(methods=methods, protocols=protocols, distances=args.distance, device=args.device, retrieval=retrieval,
                  config=args.config, epochs=args.epochs, rn_epochs=args.rn_epochs, say=say,
                  readout=args.readout, bone_weight=args.bone_weight, progress=not args.quiet)
    if ds == "UCALGARY":
        if args.data_root is None:
            raise OfflineError("--dataset UCALGARY needs --data-root (the ucalgary_gait folder)")
        if common["config"] is None:
            common["config"] = str(E.DEFAULT_UCALGARY_CONFIG)
        if args.init and args.pretrain == "synthetic":
            raise OfflineError("--init and --pretrain synthetic both choose the encoders' starting weights; give one")
        if args.runs and run_dir is not None:
            raise OfflineError("--runs is for the runs evaluate trains; --model/--best_model name one run already")
        rows, meta = E.run_ucalgary(args.data_root, f, out, args.seeds, encoder_data=args.encoder_data,
                                    run_dir=run_dir, people=args.people, runs_dir=args.runs,
                                    subjects=args.subjects, rerank=args.rerank is not False,
                                    clean=args.clean_tracking, ensemble=args.ensemble or 1, init=args.init,
                                    pretrain=None if args.pretrain == "none" else E.UCALGARY_PRETRAIN,
                                    init_weight=E.UCALGARY_INIT_WEIGHT if args.init_weight is None else args.init_weight,
                                    **common)
    else:
        if (args.people is not None or args.runs or args.subjects is not None or args.rerank is not None
                or args.ensemble is not None or args.init is not None or args.pretrain is not None
                or args.init_weight is not None):
            raise OfflineError("--people, --subjects, --runs, --rerank, --ensemble, --init, --init-weight and "
                               "--pretrain apply to --dataset UCALGARY only")
        train = args.train and run_dir is None
        if "cage" in methods and run_dir is None and not train:
            say("no CAGE model given (--model, --best_model or --train): evaluating the baselines only")
            common["methods"] = tuple(m for m in methods if m != "cage")
        rows, meta = E.run_dataset(args.data_root or "Datasets", ds, f, args.layout, args.view, run_dir=run_dir,
                                   train=train, seeds=args.seeds, out_dir=out, **common)
    _note_embedding_override(args, meta)
    if len(sys.argv) > 1 and sys.argv[1] == "evaluate":
        meta["command"] = "cagereid " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    meta["protocols"] = ", ".join(p.upper() for p in protocols)
    trained = [Path(d) for d in meta.get("cage runs", "").split(", ") if d] or ([run_dir] if run_dir else [])
    paths = write_report(out, rows, meta, title=f"{ds} (f = {f})", training_runs=trained)
    print(markdown(summarize(rows), f"{ds} (f = {f})").split("## All metrics")[0].rstrip())
    print(f"\nreport: {paths['report.md']}  ({len(paths) - 2} plots)")
    return 0


def _retrieval(args: argparse.Namespace, base):
    """How P2 ranks (`offline.evaluate.Retrieval`): ``base``'s settings unless --walk-pooling/--gallery-smoothing."""
    from offline import evaluate as E

    return E.Retrieval(args.walk_pooling or base.walk_pool,
                       base.gallery_smooth if args.gallery_smoothing is None else args.gallery_smoothing)


def _note_embedding_override(args: argparse.Namespace, meta: dict) -> None:
    """Record --readout/--bone-weight in the report's metadata when either was given."""
    if args.readout is not None or args.bone_weight is not None:
        meta["embedding override"] = (f"readout {args.readout or 'as trained'}, bone weight "
                                      f"{args.bone_weight if args.bone_weight is not None else 'as trained'}")


def run_tracks(args: argparse.Namespace) -> int:
    """`cagereid evaluate --tracks MANIFEST`: the video re-ID benchmark (`offline.video_manifest`)."""
    import shlex
    import sys
    from pathlib import Path

    from offline import evaluate as E
    from offline.errors import OfflineError
    from offline.report import markdown, summarize, write_report
    from offline.video_manifest import evaluate_manifest

    if args.dataset is not None:
        raise OfflineError("give either --dataset or --tracks, not both")
    protocols = ("p1", "p2") if args.protocol == "both" else (args.protocol,)
    model = E.resolve_run_dir(args.model, args.models_root) if args.model else None
    device = "cpu" if args.device == "auto" else args.device
    retrieval = _retrieval(args, E.PLAIN)
    rows, meta = evaluate_manifest(args.tracks, model, args.methods, protocols, args.distance, device,
                                   policy=args.missing_joints, min_visibility=args.min_visibility,
                                   readout=args.readout, bone_weight=args.bone_weight, retrieval=retrieval)
    _note_embedding_override(args, meta)
    if len(sys.argv) > 1 and sys.argv[1] == "evaluate":
        meta["command"] = "cagereid " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    meta["protocols"] = ", ".join(p.upper() for p in protocols)
    out = Path(args.out) if args.out else Path("runs") / f"eval_tracks_{Path(args.tracks).stem}"
    title = f"video re-ID ({Path(args.tracks).name}, f = {meta['f']})"
    paths = write_report(out, rows, meta, title=title, training_runs=[model] if model else [])
    print(markdown(summarize(rows), title).split("## All metrics")[0].rstrip())
    print(f"\nreport: {paths['report.md']}  ({len(paths) - 2} plots)")
    return 0
