"""`cagereid bench stream`: latency and throughput of the live pipeline (our part: skeletons -> decisions).

The pose stage is replaced by pre-computed skeletons (synthetic walkers generated before the clock starts,
replayed by the producer stage), so the numbers measure windowing, ZeroMQ hops, the encoder, matching and
decisions. Prints three tables:

1. ZeroMQ hop: one `FrameMsg` (one track, 20 joints) encode + send + receive + decode over tcp://127.0.0.1.
2. Encoder batch latency: ``embed`` of B windows, CPU (and CUDA when available); the identify stage's whole
   work per batch in one process (embed + pooling + decisions, no sockets), to set against the end-to-end time.
3. End to end for 1, 4, 16 and 64 concurrent tracks at 30 fps: frame published -> decision p50/p95 (producer,
   windower and identify processes linked by ZeroMQ), mean windows per encoder batch, sustained windows/s,
   dropped; plus one run replaying as fast as possible (capacity).
4. Real pose in the loop (``--video VIDEO``, e.g. ../shared/data/video/opencv_vtest.avi): what ``cagereid live
   --source VIDEO`` does (detector, tracker, MediaPipe in parallel pose workers, then the same stages), for
   ``--video-seconds``: frames/s of the producer and frame published -> decision p50/p95. A frame is published
   once its poses are done, so frame captured -> decision adds about one frame's pose time (1 / frames/s).
5. Several cameras (``--cameras 1,2,4,8 --workers 1,2``, only this table then): `cagereid serve` (windower + N
   identify workers + supervisor) fed by that many `cagereid camera` processes over TCP on 127.0.0.1 (plain: the
   frames bus without keys), each replaying ``--tracks-per-camera`` synthetic walkers at 30 fps (stride from the
   config, 3): frame published by the camera -> decision p50/p95 over ``--seconds`` after every camera's tracks
   have decisions (start-up not timed), windows/s, losses, and the load average during the run (this machine's
   cores are shared: the cameras run here too).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from cagereid.bench import show

HELP = ("Live pipeline: frame->decision latency p50/p95 and windows/s for 1/4/16/64 tracks and a real video, "
        "ZeroMQ hop, encoder batch; --cameras: serve fed by 1/2/4/8 camera processes, 1 or 2 identify workers")



def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="encoder folder (default: the shipped live model, cages/pretrained/live)")
    p.add_argument("--tracks", default="1,4,16,64", help="concurrent track counts (default: 1,4,16,64)")
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per track count (default: 8)")
    p.add_argument("--stride", type=int, default=None, help="window stride (default: cagereid/configs/stream.yaml)")
    p.add_argument("--skip-e2e", action="store_true", help="only the hop and encoder tables")
    p.add_argument("--video", default=None, metavar="VIDEO",
                   help="a real video for the pose-in-the-loop row, e.g. ../shared/data/video/opencv_vtest.avi "
                        "(default: no such row)")
    p.add_argument("--video-seconds", type=float, default=30.0, help="seconds of the real-video run (default: 30)")
    p.add_argument("--cameras", default=None, metavar="N,N,...",
                   help="only the several-cameras table: serve fed by this many camera processes, e.g. 1,2,4,8")
    p.add_argument("--workers", default="1", metavar="N,N,...", help="identify workers for --cameras (default: 1)")
    p.add_argument("--tracks-per-camera", type=int, default=8, help="walkers per camera for --cameras (default: 8)")


def _pct(a, q):
    import numpy as np

    return float(np.percentile(np.asarray(a, float), q)) if len(a) else float("nan")


def bench_hop(n: int = 2000, curve: bool = False) -> dict:
    """Round trips of one FrameMsg; ``curve``: CURVE-encrypted with a ZAP handler, as the pipeline's buses."""
    import numpy as np
    import zmq

    from stream import security
    from stream.messages import FrameMsg, decode

    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    auth = None
    if curve:
        keys = security.RunKeys.generate()
        server, client = keys.for_stage("windower"), keys.for_stage("producer")
        auth = security.Authenticator(ctx, server.allow)
        security.serve(a, server, "frames", 1 << 16)
        security.client(b, client, "frames", 1 << 16)
    port = a.bind_to_random_port("tcp://127.0.0.1")
    b.connect(f"tcp://127.0.0.1:{port}")
    joints = np.random.default_rng(0).normal(size=(1, 20, 3)).astype(np.float32)
    rts, codec = [], []
    for i in range(n + 100):
        t0 = time.perf_counter()
        frames = FrameMsg(seq=i, frame=i, t_capture=0.0, t_pub=time.time(), tracks=[1], joints=joints).to_frames()
        decode(frames)
        t1 = time.perf_counter()
        a.send_multipart(frames)
        m = b.recv_multipart()
        b.send_multipart(m)
        decode(a.recv_multipart())
        t2 = time.perf_counter()
        if i >= 100:
            codec.append((t1 - t0) * 1e6)
            rts.append((t2 - t1) * 1e6)
    a.close()
    b.close()
    if auth is not None:
        auth.stop()
    ctx.term()
    return {"round_trip_p50_us": _pct(rts, 50), "round_trip_p95_us": _pct(rts, 95), "hop_p50_us": _pct(rts, 50) / 2,
            "encode_decode_p50_us": _pct(codec, 50)}


def bench_encoder(model: str | None, device: str, batches=(1, 4, 16, 64), reps: int = 20) -> list[dict]:
    import numpy as np

    from pose.layouts import get_layout
    from stream.identify import load_encoder

    enc = load_encoder(model, device)
    J = get_layout(enc.layout).J
    rows = []
    for B in batches:
        w = np.random.default_rng(0).normal(size=(B, enc.f, J, 3)).astype(np.float32)
        enc.embed(w)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            enc.embed(w)
            if enc.device.startswith("cuda"):
                import torch

                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
        rows.append({"device": enc.device, "batch": B, "p50_ms": _pct(times, 50), "p95_ms": _pct(times, 95),
                     "per_window_ms": _pct(times, 50) / B})
    return rows


def bench_identify(model: str | None, batches=(1, 16, 64), reps: int = 30) -> list[dict]:
    """The identify stage's work without sockets (`stream.identify.Identifier.process`: embed, pooling,
    decisions; no gallery, as in the end-to-end runs): p50 per batch, and the encoder's share."""
    import numpy as np

    from pose.layouts import get_layout
    from stream.config import load_config
    from stream.identify import Identifier, load_encoder
    from stream.messages import Window

    enc = load_encoder(model, "cpu")
    J = get_layout(enc.layout).J
    rows = []
    for B in batches:
        ident = Identifier(enc, load_config(), None)
        w = np.random.default_rng(0).normal(size=(B, enc.f, J, 3)).astype(np.float32)
        batch = [Window(track=i, frame=0, t_pub=time.time(), window=w[i]) for i in range(B)]
        ident.process(batch)
        total, embed = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            ident.process(batch)
            t1 = time.perf_counter()
            enc.embed(w)
            embed.append((time.perf_counter() - t1) * 1e3)
            total.append((t1 - t0) * 1e3)
        rows.append({"batch": B, "process_ms": _pct(total, 50), "embed_ms": _pct(embed, 50)})
    return rows


def bench_e2e(model: str | None, tracks: int, seconds: float, realtime: bool, stride: int | None) -> dict:
    from stream.config import load_config
    from stream.pipeline import Pipeline

    cfg = load_config()
    if stride:
        cfg = cfg.with_overrides(stride=stride)
    frames = int(seconds * cfg.fps) + 30
    source = f"synthetic:people={tracks},frames={frames},walks=1"
    with Pipeline(cfg, source, model=model, gallery=None, realtime=realtime) as pipe:
        pipe.start()
        pipe.run_until(lambda: pipe.producer_finished, seconds * 4 + 30)
        pipe.run_until(lambda: False, 1.0)  # drain
        st = pipe.state.stages
        c = lambda s, k: st[s].counters.get(k, 0) if s in st else 0  # noqa: E731
        lat = list(pipe.state.latencies_ms)
        windows = c("identify", "windows")
        batches = c("identify", "batches")
        dropped = (c("producer", "dropped") + c("windower", "windows_dropped") + c("windower", "frames_lost")
                   + c("identify", "stale") + c("identify", "dropped"))
    return {"tracks": tracks, "mode": "30 fps" if realtime else "max rate", "windows": int(windows),
            "per_batch": windows / max(batches, 1),
            "windows_per_s": pipe.state.decisions / max(pipe.state.last_decision - pipe.state.first_decision, 1e-9),
            "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95),
            "dropped": int(dropped), "frames": int(c("producer", "frames"))}


def bench_video(model: str | None, video: str, seconds: float) -> dict:
    """`cagereid live --source VIDEO` for ``seconds``: producer frames/s and frame published -> decision."""
    from stream.config import load_config
    from stream.pipeline import Pipeline

    cfg = load_config()
    with Pipeline(cfg, video, model=model, gallery=None, realtime=True) as pipe:
        pipe.start()
        pipe.run_until(lambda: pipe.state.decisions > 0 or pipe.producer_finished, 120)  # start-up: not timed
        st = pipe.state.stages
        c = lambda s, k: st[s].counters.get(k, 0) if s in st else 0  # noqa: E731
        f0, t0 = c("producer", "frames"), time.time()
        pipe.state.latencies_ms.clear()
        pipe.run_until(lambda: pipe.producer_finished, seconds)
        frames, wall = c("producer", "frames") - f0, time.time() - t0
        lat = list(pipe.state.latencies_ms)
    return {"frames": int(frames), "fps": frames / max(wall, 1e-9), "decisions": len(lat),
            "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95)}


def bench_cameras(model: str | None, cameras: int, workers: int, tracks: int, seconds: float,
                  stride: int | None) -> dict:
    """serve + ``cameras`` `cagereid camera` processes (synthetic walkers, 30 fps) for ``seconds`` after warm-up."""
    import os
    import subprocess
    import sys

    from stream.config import load_config
    from stream.pipeline import Pipeline

    cfg = load_config()
    if stride:
        cfg = cfg.with_overrides(stride=stride)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path]))
    procs = []
    with Pipeline(cfg, None, model=model, gallery=None, workers=workers, frames_bind="tcp://127.0.0.1:0") as pipe:
        pipe.start()
        port = pipe.addr["frames"].rsplit(":", 1)[1]
        try:
            for k in range(cameras):
                src = f"synthetic:people={tracks},frames=600,walks=0,walk_seed={1000 + 17 * k}"
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "cagereid", "camera", "--source", src, "--connect", f"127.0.0.1:{port}",
                     "--name", f"cam{k + 1}", "--quiet", "--layout", cfg.layout, "--fps", str(cfg.fps)],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            names = {f"cam{k + 1}" for k in range(cameras)}
            pipe.run_until(lambda: {r.camera for r in pipe.state.tracks.values()} >= names, 120)  # start-up: not timed
            pipe.run_until(lambda: False, 2.0)
            st = pipe.state.stages

            def total(key):
                return sum(r.counters.get(key, 0) for n, r in st.items() if n == "windower" or n.startswith("identify"))

            keys = ("windows_dropped", "frames_lost", "stale", "dropped")
            before = {k: total(k) for k in (*keys, "windows")}
            pipe.state.latencies_ms.clear()
            d0, t0, load0 = pipe.state.decisions, time.time(), os.getloadavg()[0]
            pipe.run_until(lambda: False, seconds)
            wall = time.time() - t0
            decisions = pipe.state.decisions - d0
            lat = list(pipe.state.latencies_ms)
            lost = sum(total(k) - before[k] for k in keys)
            load = (load0 + os.getloadavg()[0]) / 2
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    return {"cameras": cameras, "tracks": cameras * tracks, "workers": workers, "decisions": decisions,
            "windows_per_s": decisions / max(wall, 1e-9), "p50_ms": _pct(lat, 50), "p95_ms": _pct(lat, 95),
            "lost": int(lost), "load": load}


def run_cameras(args, console, steps) -> int:
    from rich.table import Table

    cams = [int(n) for n in args.cameras.split(",") if n]
    workers = [int(n) for n in args.workers.split(",") if n]
    t = Table(title=f"several cameras: serve + camera processes, {args.tracks_per_camera} walkers each at 30 fps, "
                    "frame published by the camera -> decision")
    for col in ("cameras", "tracks", "workers", "decisions/s", "p50 ms", "p95 ms", "lost", "load avg"):
        t.add_column(col)
    for w in workers:
        for n in cams:
            steps.start()
            r = bench_cameras(args.model, n, w, args.tracks_per_camera, args.seconds, args.stride)
            steps.done(f"{n} camera(s), {w} worker(s)")
            t.add_row(str(n), str(r["tracks"]), str(w), f"{r['windows_per_s']:.0f}", f"{r['p50_ms']:.1f}",
                      f"{r['p95_ms']:.1f}", str(r["lost"]), f"{r['load']:.1f}")
            console.print(f"  {n} cameras x {args.tracks_per_camera} tracks, {w} workers: p95 {r['p95_ms']:.1f} ms")
    show(console, t)
    return 0


def run(args: argparse.Namespace) -> int:
    import os
    import platform

    from rich.console import Console
    from rich.table import Table

    from cagereid.progress import Steps, stderr_say

    console = Console()
    console.print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
                  f"model {args.model or 'cages/pretrained/live'}")
    if args.cameras:
        n = len([c for c in args.cameras.split(",") if c]) * len([w for w in args.workers.split(",") if w])
        return run_cameras(args, console, Steps(n, stderr_say(args.quiet)))
    n_e2e = 0 if args.skip_e2e else len(args.tracks.split(",")) + 1
    steps = Steps(2 + n_e2e + (1 if args.video and not args.skip_e2e else 0), stderr_say(args.quiet))
    hops = {"plain": bench_hop(), "CURVE + ZAP (the pipeline's buses)": bench_hop(curve=True)}
    steps.done("ZeroMQ hop")
    t = Table(title="ZeroMQ hop (FrameMsg, 1 track x 20 joints, tcp://127.0.0.1, same process)")
    t.add_column("transport")
    for k in hops["plain"]:
        t.add_column(k)
    t.add_column("round trip vs plain")
    for name, hop in hops.items():
        t.add_row(name, *(f"{v:.1f}" for v in hop.values()),
                  f"{hop['round_trip_p50_us'] / hops['plain']['round_trip_p50_us']:.2f}x")
    show(console, t)

    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    t = Table(title="encoder embed (traced, 1 thread)")
    for col in ("device", "batch", "p50 ms", "p95 ms", "ms/window"):
        t.add_column(col)
    steps.start()
    for dev in devices:
        for r in bench_encoder(args.model, dev):
            t.add_row(r["device"], str(r["batch"]), f"{r['p50_ms']:.2f}", f"{r['p95_ms']:.2f}",
                      f"{r['per_window_ms']:.3f}")
    show(console, t)
    t = Table(title="identify stage in one process (Identifier.process: embed + pooling + decisions, no sockets)")
    for col in ("windows", "process p50 ms", "of which embed p50 ms"):
        t.add_column(col)
    for r in bench_identify(args.model):
        t.add_row(str(r["batch"]), f"{r['process_ms']:.2f}", f"{r['embed_ms']:.2f}")
    steps.done("encoder and identify stage")
    show(console, t)
    if args.skip_e2e:
        return 0
    t = Table(title="end to end: frame published -> decision")
    for col in ("tracks", "replay", "windows", "batch", "win/s", "p50 ms", "p95 ms", "dropped"):
        t.add_column(col)
    runs = [(int(n), True) for n in args.tracks.split(",")] + [(max(int(n) for n in args.tracks.split(",")), False)]
    for n, realtime in runs:
        steps.start()
        r = bench_e2e(args.model, n, args.seconds, realtime, args.stride)
        steps.done(f"end to end, {n} tracks")
        t.add_row(str(n), r["mode"], str(r["windows"]), f"{r['per_batch']:.1f}", f"{r['windows_per_s']:.0f}",
                  f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", str(r["dropped"]))
        console.print(f"  {n} tracks ({r['mode']}): p95 {r['p95_ms']:.1f} ms, {r['windows_per_s']:.0f} windows/s")
    show(console, t)
    if args.video:
        from pose.sources import SourceError

        if not Path(args.video).exists():
            raise SourceError(f"{args.video}: no such video")
        steps.start()
        r = bench_video(args.model, args.video, args.video_seconds)
        steps.done(f"real video {Path(args.video).name}")
        t = Table(title=f"real pose in the loop: {Path(args.video).name} (live --source VIDEO), "
                        f"{args.video_seconds:.0f} s after the first decision")
        for col in ("frames", "frames/s", "decisions", "published->decision p50 ms", "p95 ms",
                    "captured->decision p50 ms (+ 1 frame of pose)"):
            t.add_column(col)
        t.add_row(str(r["frames"]), f"{r['fps']:.1f}", str(r["decisions"]), f"{r['p50_ms']:.1f}",
                  f"{r['p95_ms']:.1f}", f"{r['p50_ms'] + 1e3 / max(r['fps'], 1e-9):.0f}")
        show(console, t)
    return 0
