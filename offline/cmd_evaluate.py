"""`cagereid evaluate`: CAGEs next to raw-kNN and D13-kNN on the same splits, P1 and/or P2, report + plots."""
from __future__ import annotations

import argparse

HELP = "evaluate CAGEs and the raw/D13 kNN baselines (P1 classifier and P2 retrieval protocols); write a report"

DATASETS = ("BIWI", "IAS", "KGBD", "KS20", "CASIA_B", "CASIA_B_match", "UCALGARY")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.epilog = ("Examples:  cagereid evaluate --dataset UCALGARY --data-root ../shared/data/ucalgary_gait "
                     "--length 6 --protocol both --seeds 3 --out runs/ucalgary   |   cagereid evaluate "
                     "--dataset BIWI --data-root Datasets --RN_dir BIWI_f6_rev_rec --models-root runs   |   cagereid evaluate "
                     "--tracks clips.csv --out runs/video")
    g = parser.add_argument_group("data")
    g.add_argument("--dataset", default=None, type=str,
                   help=f"one of {', '.join(DATASETS)} (case-insensitive); or give --tracks")
    g.add_argument("--tracks", default=None, metavar="MANIFEST",
                   help="video re-ID benchmark: a CSV/YAML manifest of tracks files from `cagereid extract` "
                        "(clip, person, gallery|probe; CASIA-B names SSS-CC-NN-VVV need neither). CAGEs: the "
                        "shipped live model, or --RN_dir DIR (a model folder)")
    g.add_argument("--missing-joints", choices=("hold", "mirror", "root"), default=None,
                   help="--tracks: how joints the pose estimator missed are filled (default: mirror, as live; "
                        "see cages/windows.py)")
    g.add_argument("--min-visibility", type=float, default=None,
                   help="--tracks: joints from MediaPipe landmarks below this visibility are missing (default: "
                        "the live threshold, 0)")
    g.add_argument("--data-root", default=None,
                   help="folder holding <DATASET>/<f>/... (CAGE or P2 layout); for UCALGARY the ucalgary_gait folder "
                        "(default: Datasets, UCALGARY: ../shared/data/ucalgary_gait)")
    g.add_argument("--layout", choices=("auto", "cage", "p2"), default="auto",
                   help="on-disk layout; auto: p2 when <root>/<DS>/<f>/train_npy_data exists")
    g.add_argument("--length", "-f", type=int, default=None, help="window length f (default: 6; CASIA_B 20; CASIA_B_match 50)")
    g.add_argument("--view", type=int, default=None, help="KS20 cross-view split 0-4 / CASIA_B CVE view 0-10 (default: all)")
    g = parser.add_argument_group("protocol")
    g.add_argument("--protocol", choices=("p1", "p2", "both"), default="both",
                   help="p1: classifier scores (RN / kNN class scores); p2: retrieval ranking")
    g.add_argument("--distance", default="euclidean,cosine", help="P2 distances, comma-separated")
    g.add_argument("--methods", default="cage,raw-kNN,D13-kNN",
                   help="comma-separated subset of: cage, raw-kNN, D13-kNN")
    g = parser.add_argument_group("CAGE model")
    g.add_argument("--RN_dir", default=None, help="evaluate this run folder of `cagereid train` (name under "
                   "--models-root, or a path)")
    g.add_argument("--best_model", default=None, choices=("rev_rec", "rev_rec_plus", "prediction", "sorting"),
                   help="pick the newest run for --dataset/--length with this pretext model under --models-root")
    g.add_argument("--models-root", default="models", help="where `cagereid train` run folders live")
    g.add_argument("--train", action="store_true",
                   help="train CAGEs (encoder + RN) per seed on the training split instead of loading a run "
                        "(always on for UCALGARY unless --RN_dir/--best_model is given)")
    g.add_argument("--config", default=None, help="training config YAML (TrainConfig fields) for --train and UCALGARY "
                   "(UCALGARY default: configs/eval_ucalgary.yaml; quicker: configs/eval_ucalgary_quick.yaml)")
    g.add_argument("--epochs", type=int, default=None, help="override encoder epochs for --train")
    g.add_argument("--rn-epochs", type=int, default=None, help="override RN epochs for --train")
    g.add_argument("--encoder-data", default="run1,all",
                   help="UCALGARY: which windows train the encoder, comma-separated: run1 (no labels, Run1 only, "
                        "comparable to the peers) and/or all (transductive: every run, probes included)")
    g.add_argument("--runs", default=None,
                   help="UCALGARY: folder of the per-seed CAGE runs (finished ones are reused; default: --out)")
    g.add_argument("--seeds", type=int, default=1, help="repeat training + evaluation with seeds 0..N-1; mean ± std")
    g.add_argument("--device", default="auto", help="torch device for CAGEs (auto, cpu, cuda, 0)")
    g.add_argument("--readout", choices=("ap", "head"), default=None,
                   help="override the CAGE retrieval embedding: ap (mean AP row, the paper's) or head (contrastive "
                        "projections, the improved default); P2 only, the RN is unchanged (default: as trained)")
    g.add_argument("--bone-weight", type=float, default=None,
                   help="override the bone-length cue weight of the retrieval embedding (default: as trained)")
    g.add_argument("--people", default=None,
                   help="UCALGARY, P2 only: evaluate on these subjects only, e.g. 1,3,5,7,9,12,14 (choose settings "
                        "on some people, check them on the others); the encoder still trains on every subject")
    g = parser.add_argument_group("output")
    g.add_argument("--out", default=None, help="report folder (default: the run folder with --RN_dir, else "
                   "runs/eval_<DATASET>_f<f>)")


def run(args: argparse.Namespace) -> int:
    from offline.evaluate import main

    return main(args)
