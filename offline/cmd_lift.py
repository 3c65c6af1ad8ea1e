"""`cagereid lift build-library|train|apply|evaluate`: the OpenPose 2D -> 3D lifting path (CAGE_SPEC §7.1).

    cagereid lift build-library                      # UCalgary (minus held-out 11-14) + MediaPipe + synthetic
    cagereid lift train                              # Martinez residual MLP on the library
    cagereid lift evaluate                           # MPJPE (mm) of both lifters on held-out real walks
    cagereid lift apply OPENPOSE_JSON_DIR --lifter matching --out walk3d.npz
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "2D->3D lifting of OpenPose poses: build the 3D library, train the MLP, evaluate MPJPE, lift JSON folders"

from offline.lift_library import DEFAULT_LIBRARY, DEFAULT_MLP, WORKDIR, default_smooth, make_lifter



def add_arguments(p: argparse.ArgumentParser) -> None:
    from cagereid.flags import add_quiet, alias

    sub = p.add_subparsers(dest="lift_cmd", metavar="STEP", required=True)

    b = sub.add_parser("build-library", help="project real + synthetic 3D walks through random virtual cameras",
                       description="Build the (2D projection, depth) library both lifters use.")
    b.add_argument("--out", type=Path, default=DEFAULT_LIBRARY, help="library .npz (default: %(default)s)")
    b.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                   help="the ucalgary_gait folder (needed by the ucalgary source)")
    alias(b, "--ucalgary", "--data-root", "data_root", type=Path, metavar="DIR")
    b.add_argument("--held-out", type=int, nargs="*", default=[11, 12, 13, 14], metavar="S",
                   help="UCalgary subjects kept out of the library for evaluation (default: 11 12 13 14)")
    b.add_argument("--video", type=Path, nargs="*", default=None, dest="videos",
                   help="videos whose MediaPipe world landmarks join the library (needed by the mediapipe source)")
    b.add_argument("--sources", nargs="+", default=["ucalgary", "mediapipe", "synthetic"],
                   choices=["ucalgary", "mediapipe", "synthetic"], help="which sources to use (default: all)")
    b.add_argument("--synthetic", type=int, default=20, metavar="N", help="synthetic identities (2 walks each) (default: 20)")
    b.add_argument("--views", type=int, default=8, help="virtual cameras per 3D pose (default: 8)")
    b.add_argument("--frame-step", type=int, default=2, help="keep every n-th frame of each walk (default: 2)")
    b.add_argument("--no-mirror", action="store_true", help="do not add left/right mirrored poses")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--cache", type=Path, default=WORKDIR / "cache",
                   help="where MediaPipe world landmarks of the videos are cached (default: %(default)s)")

    t = sub.add_parser("train", help="train the Martinez et al. residual MLP lifter on a library")
    t.add_argument("--library", type=Path, default=DEFAULT_LIBRARY, help="(default: %(default)s)")
    t.add_argument("--out", type=Path, default=DEFAULT_MLP, help="checkpoint (default: %(default)s)")
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--width", type=int, default=512, help="hidden width (Martinez: 1024) (default: 512)")
    t.add_argument("--blocks", type=int, default=2, help="residual blocks (default: 2)")
    t.add_argument("--dropout", type=float, default=0.25)
    t.add_argument("--batch-size", type=int, default=256, help="training batch (default: 256)")
    alias(t, "--batch", "--batch-size", "batch_size", type=int, metavar="N")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--noise", type=float, default=0.03, help="2D input noise, in pose-size units (default: 0.03)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto|cpu|cuda (default: auto)")

    a = sub.add_parser("apply", help="lift an OpenPose JSON folder to 14-joint 3D sequences (.npz)")
    a.add_argument("input", type=Path, help="folder of OpenPose *_keypoints.json files (BODY_25 or COCO-18)")
    a.add_argument("--out", type=Path, required=True, help="output .npz (joints_<i> (T,14,3) per person)")
    _lifter_args(a)
    a.add_argument("--min-conf", type=float, default=0.05, help="keypoints below this confidence are gaps (default: 0.05)")
    a.add_argument("--min-frames", type=int, default=10, help="people seen in fewer frames are dropped (default: 10)")
    a.add_argument("--all-people", action="store_true", help="lift every person, not only the main one")

    e = sub.add_parser("evaluate", help="MPJPE (mm) of both lifters on projections of held-out real walks")
    e.add_argument("--library", type=Path, default=DEFAULT_LIBRARY, help="(default: %(default)s)")
    e.add_argument("--mlp", type=Path, default=DEFAULT_MLP, help="MLP checkpoint (skipped if absent) (default: %(default)s)")
    alias(e, "--model", "--mlp", "mlp", type=Path, metavar="FILE")
    e.add_argument("--data-root", type=Path, required=True, metavar="DIR",
                   help="the ucalgary_gait folder holding the held-out subjects")
    alias(e, "--ucalgary", "--data-root", "data_root", type=Path, metavar="DIR")
    e.add_argument("--held-out", type=int, nargs="*", default=None, metavar="S",
                   help="held-out UCalgary subjects (default: those the library left out: 11 12 13 14)")
    e.add_argument("--k", type=int, nargs="+", default=[1, 5], help="matching k values to report (default: 1 5)")
    e.add_argument("--smooth", type=float, default=2.0, help="temporal smoothing sigma (frames) for 'smoothed' rows")
    e.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.03],
                   help="2D noise levels (pose-size units) to evaluate at (default: 0 0.03)")
    e.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    e.add_argument("--device", default="auto")
    add_quiet(e, "no progress bar on stderr (the tables are still printed)")


def _lifter_args(p: argparse.ArgumentParser) -> None:
    from cagereid.flags import alias

    p.add_argument("--lifter", choices=["matching", "mlp"], default="matching",
                   help="matching = Chen & Ramanan (paper), mlp = Martinez residual MLP (default: matching)")
    p.add_argument("--library", type=Path, default=DEFAULT_LIBRARY, help="library for --lifter matching (default: %(default)s)")
    p.add_argument("--mlp", type=Path, default=None, help=f"checkpoint for --lifter mlp (default: {DEFAULT_MLP})")
    alias(p, "--model", "--mlp", "mlp", type=Path, metavar="FILE")
    p.add_argument("--k", type=int, default=1, help="matching: average the depth of k nearest exemplars (default: 1)")
    p.add_argument("--smooth", type=float, default=None,
                   help="temporal smoothing sigma in frames (default: 0 for matching, 2 for mlp)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (default: auto)")


def run(args: argparse.Namespace) -> int:
    return {"build-library": _build, "train": _train, "apply": _apply, "evaluate": _evaluate}[args.lift_cmd](args)


def _build(args) -> int:
    from offline import lift_library as LL

    cfg = LL.LibraryConfig(
        ucalgary_root=str(args.data_root or ""), held_out=tuple(args.held_out),
        videos=tuple(str(v) for v in (args.videos or ())),
        synthetic_identities=args.synthetic, frame_step=args.frame_step, views=args.views,
        mirror=not args.no_mirror, seed=args.seed, sources=tuple(args.sources))
    LL.build_library(cfg, args.out, cache_dir=args.cache)
    return 0


def _train(args) -> int:
    from rich.progress import Progress

    from offline import lift_library as LL
    from pose import lifting as L

    x2d, depth = LL.load_pairs(args.library)
    cfg = L.MLPConfig(width=args.width, blocks=args.blocks, dropout=args.dropout)
    with Progress() as bar:
        task = bar.add_task("training MLP lifter", total=args.epochs)

        def on_epoch(epoch, logs):
            bar.update(task, advance=1, description=f"epoch {epoch}/{args.epochs}  L1 {logs['train_l1']:.4f}")

        lifter, history = L.train_mlp(x2d, depth, cfg, epochs=args.epochs, batch=args.batch_size, lr=args.lr,
                                      noise=args.noise, seed=args.seed, device=args.device, progress=on_epoch)
    lifter.save(args.out, extra={"library": str(args.library), "epochs": args.epochs, "batch": args.batch_size,
                                 "lr": args.lr, "noise": args.noise, "seed": args.seed,
                                 "history": json.dumps(history)})
    print(f"MLP lifter ({sum(p.numel() for p in lifter.model.parameters())} parameters) -> {args.out}")
    return 0


def _apply(args) -> int:
    import numpy as np

    from offline.lift_library import lift_openpose_dir
    from pose.io import save_npz

    lifter = make_lifter(args.lifter, args.library, args.mlp, args.k, args.device)
    smooth = default_smooth(args.lifter, args.smooth)
    people = lift_openpose_dir(args.input, lifter, smooth, args.min_conf, args.min_frames, args.all_people)
    arrays = {"n_people": np.asarray(len(people)),
              "meta": np.asarray(json.dumps({
                  "source": str(args.input), "layout": "casia14", "lifter": args.lifter, "k": args.k,
                  "smooth_sigma": smooth, "format": people[0]["format"],
                  "axes": "x, y image pixels (y down); z depth relative to the pelvis, pixel units, away from camera"}))}
    for i, p in enumerate(people):
        arrays[f"joints_{i}"] = p["joints"]
        arrays[f"frames_{i}"] = p["frames"]
        arrays[f"valid2d_{i}"] = p["valid2d"]
    save_npz(args.out, arrays)
    for i, p in enumerate(people):
        print(f"person {i}: {len(p['frames'])} frames (from frame {int(p['frames'][0])}), "
              f"{int(p['valid2d'].all(1).sum())} with all 14 joints detected")
    print(f"lifted ({args.lifter}) -> {args.out}")
    return 0


def _evaluate(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from cages.io import write_json
    from offline import lift_library as LL
    from pose import lifting as L

    held = args.held_out
    if held is None:
        held = (LL.library_held_out(args.library) if Path(args.library).is_file() else None) or list(LL.HELD_OUT)
    seqs = LL.heldout_sequences(args.data_root, held)
    proj = LL.project_sequences(seqs)
    lifters = {}
    for k in args.k:
        lifters[f"matching k={k}"] = make_lifter("matching", args.library, k=k, device=args.device)
    mlp_path = args.mlp if Path(args.mlp).is_file() else None
    if mlp_path:
        lifters["mlp"] = L.MLPLifter.load(mlp_path, device=args.device)
    from offline.training.common import progress_bar

    results, timings = {}, {}
    with progress_bar(not args.quiet) as bar:
        task = bar.add_task("lifting held-out walks", total=len(proj.uv) * len(args.noise), info="")
        for noise in args.noise:
            bar.update(task, info=f"2D noise {noise}")
            results[f"noise={noise}"] = LL.evaluate(lifters, proj, smooth_sigma=args.smooth, noise=noise,
                                                    timings=timings, on_walk=lambda: bar.advance(task))
    console = Console()
    n_frames = sum(len(u) for u in proj.uv)
    for key, res in results.items():
        table = Table(title=f"MPJPE (mm, pelvis-aligned, known scale) on held-out UCalgary subjects {held}: "
                            f"{len(seqs)} walks x {len(proj.uv) // max(len(seqs), 1)} cameras = {n_frames} poses, "
                            f"2D {key}")
        for col in ("lifter", "CASIA views 0-180", "random cameras", "all", f"all, smoothed σ={args.smooth}"):
            table.add_column(col, justify="right" if col != "lifter" else "left")
        for name, r in res.items():
            table.add_row(name, f"{r['raw']['casia_views']:.1f}", f"{r['raw']['random']:.1f}",
                          f"{r['raw']['all']:.1f}", f"{r['smoothed']['all']:.1f}")
        console.print(table)
    n_lifted = n_frames * len(args.noise)
    console.print("lifting speed on this machine: " + ", ".join(
        f"{name} {n_lifted / max(t, 1e-9):,.0f} poses/s" for name, t in timings.items()))
    if args.json:
        write_json(args.json, {"held_out": held, "walks": len(seqs), "poses": n_frames, "results": results,
                               "poses_per_s": {name: n_lifted / max(t, 1e-9) for name, t in timings.items()}})
    return 0
