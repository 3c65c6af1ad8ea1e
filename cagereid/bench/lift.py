"""`cagereid bench lift`: 2D->3D lifting throughput (poses/s) of the matching and MLP lifters (prints a table).

Queries are library projections with 2D noise (pose-size units), lifted in one call per repeat (the
matching lifter searches the whole library for every query; the MLP is one batched forward pass).
Without a library file a synthetic one is built in memory; without an MLP checkpoint an untrained MLP of
the given width is timed (speed does not depend on the weights).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from cagereid.bench import show

HELP = "2D->3D lifting throughput (poses/s): Chen & Ramanan matching vs the residual MLP"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", type=Path, default=Path("runs/lift/library.npz"),
                   help="lifting library (default: %(default)s; a synthetic one when absent)")
    p.add_argument("--mlp", type=Path, default=Path("runs/lift/mlp.pt"),
                   help="MLP checkpoint (default: %(default)s; an untrained MLP of --width when absent)")
    p.add_argument("--width", type=int, default=512, help="MLP width when no checkpoint (default: 512)")
    p.add_argument("--poses", type=int, default=4000, help="queries per measurement (default: 4000)")
    p.add_argument("--k", type=int, nargs="+", default=[1, 5], help="matching k values (default: 1 5)")
    p.add_argument("--backends", nargs="+", default=["kdtree", "torch"], choices=["kdtree", "torch"],
                   help="matching search backends to time (default: kdtree torch)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (default: auto)")
    p.add_argument("--repeats", type=int, default=3, help="best of N (default: 3)")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import platform
    import time

    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from pose import lifting as L

    device = L.pick_device(args.device)
    console = Console()
    if args.library.is_file():
        with np.load(args.library, allow_pickle=False) as z:
            x2d, depth = z["x2d"], z["depth"]
        lib_name = str(args.library)
    else:
        from offline.lift_library import synthetic_sequences

        poses = np.concatenate([s.joints for s in synthetic_sequences(20, 2, 90, args.seed)])
        pairs = L.make_library_pairs(poses, 8, seed=args.seed)
        x2d, depth = pairs["x2d"], pairs["depth"]
        lib_name = "synthetic (in memory)"
    rng = np.random.default_rng(args.seed)
    q = x2d[rng.integers(0, len(x2d), args.poses)].astype(np.float64)
    q += 0.03 * rng.standard_normal(q.shape)

    def best(fn) -> float:
        times = []
        for _ in range(max(1, args.repeats)):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return min(times)

    from cagereid.progress import Steps, stderr_say

    combos = [(b, k) for b in args.backends for k in args.k if not (b == "kdtree" and device.type != "cpu")]
    steps = Steps(len(combos) + 1, stderr_say(args.quiet))
    rows = []
    for backend, k in combos:
        steps.start()
        m = L.MatchingLifter(x2d, depth, k=k, device=str(device), backend=backend)
        m.lift_normalised(q[:8])  # build the tree / warm up the device
        t = best(lambda m=m: m.lift_normalised(q))
        rows.append((f"matching k={k} ({backend})", str(device), t))
        steps.done(f"matching lifter k={k} ({backend}): {args.poses / t:,.0f} poses/s")
    steps.start()
    if args.mlp.is_file():
        mlp = L.MLPLifter.load(args.mlp, device=str(device))
        mlp_name = f"mlp ({args.mlp.name}, {sum(p.numel() for p in mlp.model.parameters()):,} params)"
    else:
        mlp = L.MLPLifter(L.LiftMLP(L.MLPConfig(width=args.width)), device=str(device))
        mlp_name = f"mlp (untrained, width {args.width})"
    mlp.lift_normalised(q[:8])
    rows.append((mlp_name, str(device), best(lambda: mlp.lift_normalised(q))))
    steps.done(f"MLP lifter: {args.poses / rows[-1][2]:,.0f} poses/s")

    cpu = platform.processor() or platform.machine()
    table = Table(title=f"lifting throughput: {args.poses} poses, library {len(x2d):,} pairs ({lib_name}); "
                        f"torch threads {torch.get_num_threads()}, {cpu}"
                        + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""))
    for col in ("lifter", "device", "poses/s", "ms / pose"):
        table.add_column(col, justify="left" if col in ("lifter", "device") else "right")
    for name, dev, t in rows:
        table.add_row(name, dev, f"{args.poses / t:,.0f}", f"{1000 * t / args.poses:.3f}")
    show(console, table)
    return 0
