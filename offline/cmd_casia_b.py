"""`cagereid casia-b ROOT --out OUT`: convert a CASIA-B tree to 3D skeletons and the CVE / CME layouts.

    cagereid casia-b /data/CASIA-B/videos --out runs/casia_b --workers 4                # MediaPipe
    cagereid casia-b /data/CASIA-B/openpose --pose openpose-json --lifter matching --out runs/casia_b_op
    cagereid casia-b --data-root /data/CASIA-B/videos --out runs/casia_b --shard 3/8   # one of 8 jobs (any scheduler)
    cagereid casia-b --merge --out runs/casia_b                              # after all 8: manifest + layouts
"""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Convert a CASIA-B tree (videos or OpenPose JSON) to 14-joint 3D skeletons in the CVE/CME layouts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cagereid.flags import add_quiet

    p.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                   help="CASIA-B tree: videos SSS-CC-NN-VVV.avi, or OpenPose JSON folders so named (not with --merge)")
    p.add_argument("root", type=Path, nargs="?", default=None, help=argparse.SUPPRESS)  # old spelling: positional
    p.add_argument("--out", type=Path, required=True,
                   help="output folder: sequences/, Datasets/CASIA_B[_match]/..., manifest.json, failures.txt")
    p.add_argument("--pose", choices=["mediapipe", "openpose-json"], default="mediapipe",
                   help="videos through MediaPipe, or OpenPose JSON folders through 2D->3D lifting (default: mediapipe)")
    p.add_argument("--lifter", choices=["matching", "mlp"], default="matching",
                   help="openpose-json: Chen & Ramanan matching (the paper's) or the Martinez MLP (default: matching)")
    p.add_argument("--lifter-file", type=Path, default=None,
                   help="library .npz (matching) or checkpoint .pt (mlp) (default: runs/lift/library.npz | runs/lift/mlp.pt)")
    p.add_argument("--k", type=int, default=1, help="matching: nearest exemplars averaged (default: 1)")
    p.add_argument("--smooth", type=float, default=None, help="temporal smoothing sigma, frames (default: 0 matching, 2 mlp)")
    p.add_argument("--cve-f", type=int, nargs="+", default=[20], help="CVE window lengths [20] (paper: 20 30 40)")
    p.add_argument("--cme-f", type=int, nargs="+", default=[50], help="CME window lengths [50] (paper: 50 60 70)")
    p.add_argument("--cve-train", nargs="+", default=["nm-01", "nm-02", "nm-03", "nm-04"],
                   help="CVE training (gallery) sequences per subject and view; the rest are probes (default: nm-01..nm-04)")
    p.add_argument("--cme-train-subjects", type=int, default=74,
                   help="CME: subjects with id <= N train the encoder, the rest are the test set (default: 74 (LT))")
    p.add_argument("--stride", type=int, default=1, help="window stride in frames (default: 1)")
    p.add_argument("--max-frames", type=int, default=0, help="mediapipe: read at most N frames per video (0 = all)")
    p.add_argument("--workers", type=int, default=2, help="parallel worker processes; 1 = in this process (default: 2)")
    p.add_argument("--force", action="store_true", help="redo every input (also when settings changed)")
    p.add_argument("--shard", metavar="K/N", default=None,
                   help="convert only shard K of N (inputs split by a hash of their name; manifest in OUT/shards/, "
                        "no layouts: run --merge when all N are done)")
    p.add_argument("--merge", action="store_true",
                   help="merge the finished shards in OUT: manifest.json, failures.txt, the CVE/CME layouts")
    add_quiet(p)


def run(args: argparse.Namespace) -> int:
    from offline import casia_b as C
    from offline.lift_library import DEFAULT_LIBRARY, default_mlp_path, default_smooth

    from offline.errors import OfflineError

    if args.merge:
        if args.shard or args.root is not None or args.data_root is not None:
            raise OfflineError("--merge takes only --out (the folder the shards wrote to)")
        res = C.merge_shards(args.out)
        print("\n".join(C.summary_lines(res)))
        return 0
    if args.root is None and args.data_root is None:
        raise OfflineError("give the CASIA-B tree with --data-root DIR (not needed with --merge)")
    shard = C.parse_shard(args.shard) if args.shard else None

    lifter_file = ""
    if args.pose == "openpose-json":
        if args.lifter_file is not None:
            lifter_file = str(args.lifter_file)
        elif args.lifter == "matching":
            lifter_file = str(DEFAULT_LIBRARY)
        else:
            lifter_file = str(default_mlp_path() or "runs/lift/mlp.pt")
    settings = C.Settings(pose=args.pose, lifter=args.lifter if args.pose == "openpose-json" else "",
                          lifter_file=lifter_file, k=args.k if args.pose == "openpose-json" else 0,
                          smooth=default_smooth(args.lifter, args.smooth) if args.pose == "openpose-json" else 0.0,
                          max_frames=args.max_frames)
    splits = C.SplitConfig(cve_f=tuple(args.cve_f), cme_f=tuple(args.cme_f), cve_train=tuple(args.cve_train),
                           cme_train_subjects=args.cme_train_subjects, stride=args.stride)
    root = args.data_root
    if root is None and args.root is not None:
        import sys

        print("warning: the positional CASIA-B folder is deprecated and will be removed; use --data-root",
              file=sys.stderr)
        root = args.root
    res = C.convert_tree(root, args.out, settings, splits, workers=args.workers, force=args.force,
                         progress=not args.quiet, shard=shard)
    if shard is not None:
        print(f"shard {shard[0]}/{shard[1]}: converted {len(res.converted)}, skipped (already done) "
              f"{len(res.skipped)}, failed {len(res.failed)}; manifest {args.out}/shards/{shard[0]}-of-{shard[1]}.json "
              f"(run --merge when all {shard[1]} shards are done)")
        return 0
    print("\n".join(C.summary_lines(res)))
    return 0
