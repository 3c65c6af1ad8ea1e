"""`cagereid bench train`: training throughput and encoder inference latency of the CAGE model.

Default: the faithful BIWI f=6 configuration (J=20, 3 axis models, 8,474,172 parameters) on random windows,
on the current device. Prints one table; never part of the tests.
"""
from __future__ import annotations

import argparse

HELP = "CAGE training throughput (windows/s), encoder latency per window batch, parameters, analytic FLOPs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from offline.datasets.registry import TRAINABLE, dataset_arg

    p.add_argument("--dataset", type=dataset_arg(TRAINABLE), default="BIWI", metavar="|".join(TRAINABLE),
                   help="sets J (BIWI/IAS/KGBD 20, KS20 25, ...) (default BIWI)")
    p.add_argument("--length", type=int, default=6, help="window length f (default 6)")
    p.add_argument("--mode", choices=["faithful", "improved"], default="faithful")
    p.add_argument("--batch-size", type=int, default=128, help="training batch (default 128, as the original)")
    p.add_argument("--steps", type=int, default=5, help="timed training steps (after one warm-up step)")
    p.add_argument("--latency-batches", default="1,16,128", help="window batch sizes for the inference latency")
    p.add_argument("--repeats", type=int, default=10, help="inference repeats per batch size (median reported)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from cages.encoder import CageEncoder, macs_per_window
    from cages.features import CageExtractor, FeatureConfig, resolve_device
    from offline.datasets import registry
    from offline.datasets.base import WindowSet
    from offline.training.config import build_config
    from offline.training.encoder import EncoderData, batches, la_profiles, new_optimizer, training_step

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(resolve_device(args.device))
    J, f, B = registry.get(args.dataset).joints, args.length, args.batch_size
    cfg = build_config(dataset=args.dataset, f=f, mode=args.mode, batch_size=B, device=str(device)).resolved()
    ecfg = cfg.encoder_config(J)
    rng = np.random.default_rng(0)
    n = B * (args.steps + 1)
    ws = WindowSet(rng.normal(size=(n, f, J, 3)), np.zeros(n, np.int64), recording=np.arange(n) // 50,
                   start=(np.arange(n) % 50) * f)
    model = CageEncoder(ecfg).to(device)
    data = EncoderData(ws, cfg, ecfg, FeatureConfig(), device, 0)
    profiles = la_profiles(ecfg, f, device)
    opt = new_optimizer(model, cfg)
    use_amp = cfg.amp and device.type == "cuda"

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    times = []
    for k, b in enumerate(batches(data, np.arange(n), cfg, rng)[: args.steps + 1]):
        sync()
        t0 = time.perf_counter()
        training_step(model, opt, data, torch.as_tensor(b, device=device), cfg, profiles, use_amp)  # the real step
        sync()
        if k > 0:  # first step = warm-up
            times.append(time.perf_counter() - t0)
    train_wps = B * len(times) / sum(times) if times else float("nan")

    ext = CageExtractor(model, FeatureConfig(), device=device)
    lat = []
    for bs in [int(x) for x in args.latency_batches.split(",") if x.strip()]:
        w = rng.normal(size=(bs, f, J, 3)).astype(np.float32)
        ext.embed(w)  # warm-up
        runs = []
        for _ in range(args.repeats):
            sync()
            t0 = time.perf_counter()
            ext.embed(w)
            sync()
            runs.append(time.perf_counter() - t0)
        lat.append((bs, float(np.median(runs)) * 1e3))

    macs = sum(macs_per_window(ecfg).values()) * len(model.models)
    table = Table(title=f"CAGE {args.mode} {args.dataset} f={f} (J={J}) on {device}"
                        f"{'' if device.type == 'cuda' else f', {torch.get_num_threads()} CPU threads'}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("parameters (encoder, all axis models)", f"{model.n_parameters():,}")
    table.add_row("analytic FLOPs per window (training forward)", f"{2 * macs / 1e6:.1f} M")
    table.add_row(f"training throughput (batch {B}, training_step: fwd+bwd+optimiser)", f"{train_wps:,.0f} windows/s")
    for bs, ms in lat:
        table.add_row(f"encoder inference, batch of {bs} windows", f"{ms:.1f} ms ({ms / bs:.2f} ms/window)")
    Console().print(table)
    return 0
