"""`cagereid bench train`: training throughput and encoder inference latency of the CAGE model.

Default: the faithful BIWI f=6 configuration (J=20, 3 axis models, 8,474,172 parameters) on random windows,
on the current device. The timed step is the real one (`offline.training.encoder.training_step`: the
configuration's losses and weights, its optimiser, L2 term and clipping). ``--reference`` times, in the same
run, a plain PyTorch model of the same shapes (per axis: 2-layer ``nn.LSTM`` encoder, two ``nn.LSTMCell``
decoder layers with Luong attention and input feeding, output layer, projection head; the same loss kinds;
Adam), so the ratio holds while the machine's speed drifts. Each of ``--runs`` rounds times both models and a
matmul probe, model and reference steps alternating; the table gives medians over the rounds. Prints one table; never part of the tests.
"""
from __future__ import annotations

import argparse

from cagereid.bench import show

HELP = "CAGE training throughput (windows/s, optional plain-PyTorch reference), encoder latency, FLOPs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from offline.datasets.registry import TRAINABLE, dataset_arg

    p.add_argument("--dataset", type=dataset_arg(TRAINABLE), default="BIWI", metavar="|".join(TRAINABLE),
                   help="sets J (BIWI/IAS/KGBD 20, KS20 25, ...) (default BIWI)")
    p.add_argument("--length", type=int, default=6, help="window length f (default 6)")
    p.add_argument("--mode", choices=["faithful", "improved"], default="faithful")
    p.add_argument("--batch-size", type=int, default=128, help="training batch (default 128, as the original)")
    p.add_argument("--steps", type=int, default=5, help="timed training steps per run (default 5)")
    p.add_argument("--runs", type=int, default=5, help="rounds of (model, reference, matmul probe); medians reported (default 5)")
    p.add_argument("--reference", action="store_true",
                   help="also time a plain PyTorch model of the same shapes (nn.LSTM/nn.LSTMCell, Adam)")
    p.add_argument("--latency-batches", default="1,16,128",
                   help="window batch sizes for the inference latency ('' = skip)")
    p.add_argument("--repeats", type=int, default=10, help="inference repeats per batch size (median reported)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")


def reference_model(J: int, f: int, hidden: int, head_hidden: int, head_dim: int, n_models: int):
    """The plain PyTorch model the issue measures against: ``n_models`` axis models of the CAGE shapes."""
    import torch
    from torch import nn

    class Axis(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.LSTM(J, hidden, num_layers=2, batch_first=True)
            self.dec1, self.dec2 = nn.LSTMCell(J + hidden, hidden), nn.LSTMCell(hidden, hidden)
            self.memory = nn.Linear(hidden, hidden, bias=False)
            self.attn = nn.Linear(2 * hidden, hidden, bias=False)
            self.out = nn.Linear(hidden, J)
            self.head = nn.Sequential(nn.Linear(f * hidden, head_hidden), nn.ReLU(), nn.Linear(head_hidden, head_dim))

        def forward(self, x):
            H, (h, c) = self.enc(x)
            keys = self.memory(H)
            s1, s2 = (h[0], c[0]), (h[1], c[1])
            att, y0 = x.new_zeros(x.shape[0], hidden), x.new_zeros(x.shape[0], J)
            A, C, Y = [], [], []
            for _ in range(f):
                s1 = self.dec1(torch.cat([y0, att], -1), s1)
                s2 = self.dec2(s1[0], s2)
                alpha = torch.softmax(torch.bmm(keys, s2[0].unsqueeze(-1)).squeeze(-1), -1)
                ctx = torch.bmm(alpha.unsqueeze(1), H).squeeze(1)
                att = self.attn(torch.cat([s2[0], ctx], -1))
                A.append(alpha)
                C.append(ctx)
                Y.append(self.out(att))
            return torch.stack(A, 1), torch.stack(C, 1), torch.stack(Y, 1)

    return nn.ModuleList([Axis() for _ in range(n_models)])


def matmul_gflops(device, n: int = 1024, reps: int = 8) -> float:
    """fp32 matmul rate of this moment (GFLOP/s): the machine-speed probe reported next to the throughputs."""
    import time

    import torch

    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from cages.encoder import CageEncoder, la_gaussian, macs_per_window
    from cages.features import CageExtractor, FeatureConfig, resolve_device
    from cages.loss import adjacent_ntxent, la_loss, rec_loss
    from offline.datasets.base import WindowSet
    from offline.datasets import registry
    from offline.training.config import build_config
    from offline.training.encoder import EncoderData, batches, la_profiles, new_optimizer, training_step

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(resolve_device(args.device))
    J, f, B = registry.get(args.dataset).joints, args.length, args.batch_size
    cfg = build_config(dataset=args.dataset, f=f, mode=args.mode,
                       batch_size=B, device=str(device)).resolved()
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
    idx = [torch.as_tensor(b, device=device) for b in batches(data, np.arange(n), cfg, rng)][: args.steps + 1]

    def model_step(b) -> None:
        training_step(model, opt, data, b, cfg, profiles, use_amp)

    ref = reference_model(J, f, ecfg.hidden, ecfg.head_hidden, ecfg.head_dim, len(model.models)).to(device)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=cfg.lr)
    profile = la_gaussian(f, device=device)

    def ref_step(b) -> None:
        loss = 0.0
        xb = data.X[b]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            for ai, m in enumerate(ref):
                x = xb[..., ai % 3]
                A, C, Y = m(x)
                loss = loss + rec_loss(Y, x.flip(1)) + la_loss(A, profile) + adjacent_ntxent(m.head(C.flatten(1)).float(), cfg.t)
        ref_opt.zero_grad(set_to_none=True)
        loss.backward()
        ref_opt.step()

    def timed(step, b) -> float:
        _sync(device)
        t0 = time.perf_counter()
        step(b)
        _sync(device)
        return time.perf_counter() - t0

    from cagereid.progress import Steps, stderr_say

    lat_batches = [int(x) for x in args.latency_batches.split(",") if x.strip()]
    steps = Steps(max(1, args.runs) + len(lat_batches), stderr_say(args.quiet))
    steps.start()
    model_step(idx[0])  # warm-up (oneDNN primitives, allocator)
    if args.reference:
        ref_step(idx[0])
    n_win = sum(len(b) for b in idx[1:])
    runs: dict[str, list[float]] = {"model": [], "reference": [], "gflops": []}
    for _ in range(max(1, args.runs)):
        # model and reference steps alternate, so both see the same machine speed (it drifts by up to 2x)
        t_model = t_ref = 0.0
        for b in idx[1:]:
            t_model += timed(model_step, b)
            if args.reference:
                t_ref += timed(ref_step, b)
        runs["model"].append(n_win / t_model)
        if args.reference:
            runs["reference"].append(n_win / t_ref)
        runs["gflops"].append(matmul_gflops(device))
        steps.done(f"training run: {runs['model'][-1]:,.0f} windows/s"
                   + (f", reference {runs['reference'][-1]:,.0f}" if args.reference else ""))

    ext = CageExtractor(model, FeatureConfig(), device=device)
    lat = []
    for bs in lat_batches:
        steps.start()
        w = rng.normal(size=(bs, f, J, 3)).astype(np.float32)
        ext.embed(w)  # warm-up
        times = []
        for _ in range(args.repeats):
            _sync(device)
            t0 = time.perf_counter()
            ext.embed(w)
            _sync(device)
            times.append(time.perf_counter() - t0)
        lat.append((bs, float(np.median(times)) * 1e3))
        steps.done(f"inference latency, batch of {bs}")

    med = {k: float(np.median(v)) if v else float("nan") for k, v in runs.items()}
    train_flops = 3 * 2 * sum(macs_per_window(ecfg).values()) * len(model.models)  # fwd + bwd ≈ 3 × fwd
    table = Table(title=f"CAGE {args.mode} {args.dataset} f={f} (J={J}) on {device}"
                        f"{'' if device.type == 'cuda' else f', {torch.get_num_threads()} CPU threads'}; "
                        f"medians of {len(runs['model'])} runs of {len(idx) - 1} steps")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("parameters (encoder, all axis models)", f"{model.n_parameters():,}")
    table.add_row("analytic FLOPs per window (training forward)", f"{train_flops / 3 / 1e6:.1f} M")
    table.add_row("fp32 matmul rate, this run", f"{med['gflops']:.0f} GFLOP/s")
    table.add_row("FLOP limit at that rate (fwd+bwd = 3 × fwd)", f"{med['gflops'] * 1e9 / train_flops:,.0f} windows/s")
    table.add_row(f"training throughput (batch {B}, the real step: {type(opt).__name__}"
                  f"{', L2' if cfg.l2 else ''}{', clip' if cfg.clip else ''})", f"{med['model']:,.0f} windows/s")
    if args.reference:
        ratio = float(np.median(np.array(runs["model"]) / np.array(runs["reference"])))
        table.add_row("reference: plain PyTorch, same shapes (nn.LSTM, Adam)", f"{med['reference']:,.0f} windows/s")
        table.add_row("ratio model / reference (median of per-run ratios)", f"{ratio:.2f}x")
    for bs, ms in lat:
        table.add_row(f"encoder inference, batch of {bs} windows", f"{ms:.1f} ms ({ms / bs:.2f} ms/window)")
    show(Console(), table)
    return 0
