"""`cagereid bench pose`: pose extraction speed on this CPU (frames/s, ms per person-frame), single-person
full-frame path and the multi-person detector + tracker + per-crop path. Prints a table; never a test."""
from __future__ import annotations

import argparse
from pathlib import Path

from cagereid.bench import show

HELP = "Pose extraction speed: frames/s and ms per person-frame, single- and multi-person videos"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = ("Example (the project's development videos): cagereid bench pose "
                "--single ../shared/data/video/openpose_walk.avi --multi ../shared/data/video/opencv_vtest.avi")
    p.add_argument("--single", default=None, metavar="VIDEO", help="a one-person video")
    p.add_argument("--multi", default=None, metavar="VIDEO", help="a several-people video")
    p.add_argument("--frames", type=int, default=100, help="frames per video (default 100; 0 = all)")
    p.add_argument("--detect-every", type=int, default=None,
                   help="detector period in multi mode (default: the pipeline's)")
    from pose.workers import workers_arg

    p.add_argument("--pose-workers", type=workers_arg, default="auto",
                   help="multi mode: pose worker processes (default auto = one per core, at most 4; 0 = in-process)")
    p.add_argument("--warmup", type=int, default=10,
                   help="frames processed before timing starts (graph and worker start-up, the auto-mode switch "
                        "after 5 frames without a full-frame pose: not steady state; default 10)")
    p.add_argument("--check-every", type=int, default=None, metavar="N",
                   help="auto mode, one person: people-detector check period (default: the pipeline's); the "
                        "single video is also timed without the check (--multi-person no) for the ratio")
    p.add_argument("--threads", type=int, default=0,
                   help="set OpenCV's thread count (0: leave as is; set OMP_NUM_THREADS=1 for stable numbers)")


def _measure(spec: str, multi_person, frames: int | None, warmup: int = 3, **pipeline_kw) -> dict:
    import time

    from pose.extract import PosePipeline
    from pose.sources import open_source

    decode_s = 0.0
    n = 0
    total = None if frames is None else frames + warmup
    with open_source(spec, max_frames=total) as src, \
            PosePipeline(multi_person=multi_person, **pipeline_kw) as pipe:
        it = iter(src)
        for _ in range(warmup):
            frame = next(it, None)
            if frame is not None:
                pipe.step(frame)
        base = dict(pipe.stats)
        t_all = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            frame = next(it, None)
            decode_s += time.perf_counter() - t0
            if frame is None:
                break
            pipe.step(frame)
            n += 1
        wall = time.perf_counter() - t_all
        st = {k: v - base.get(k, 0) for k, v in pipe.stats.items()}
        mode = pipe.mode
        workers = pipe.pose_workers if mode == "multi" else 0
    work = wall - decode_s
    if multi_person is False:
        mode = "single, no check"
    return {"video": Path(spec).name, "mode": mode, "workers": workers, "frames": n, "fps": n / wall if wall else 0.0,
            "ms_frame": 1000 * work / max(n, 1), "person_frames": st["person_frames"],
            "ms_person_frame": 1000 * work / max(st["person_frames"], 1),
            "ms_pose_call": 1000 * st["pose_s"] / max(st["pose_calls"], 1), "pose_calls": st["pose_calls"],
            "ms_detect": 1000 * st["detector_s"] / max(st["detector_runs"], 1), "detector_runs": st["detector_runs"],
            "ms_decode": 1000 * decode_s / max(n, 1), "crowded": st.get("crowded_frames", 0)}


def _mean(a: dict, b: dict) -> dict:
    """Two runs of one configuration as one row: frames/s from the summed times, the rest averaged."""
    out = dict(a)
    out["fps"] = (a["frames"] + b["frames"]) / (a["frames"] / max(a["fps"], 1e-9) + b["frames"] / max(b["fps"], 1e-9))
    for k in ("ms_frame", "ms_person_frame", "ms_pose_call", "ms_detect", "ms_decode"):
        out[k] = 0.5 * (a[k] + b[k])
    for k in ("frames", "person_frames", "pose_calls", "detector_runs", "crowded"):
        out[k] = a[k] + b[k]
    return out


def run(args: argparse.Namespace) -> int:
    import os
    import platform

    import cv2
    from rich.console import Console
    from rich.table import Table

    from pose.sources import SourceError

    if args.threads:
        cv2.setNumThreads(args.threads)
    frames = args.frames or None
    rows = []
    videos = [v for v in (args.single, args.multi) if v]
    if not videos:
        raise SourceError("give --single VIDEO and/or --multi VIDEO")
    from cagereid.progress import Steps, stderr_say

    runs = [(v, "auto") for v in videos]
    if args.single:  # the single walker also without the second-person check: what the check costs, timed in
        # A B B A order (the first run of a process is often slower; the machine's speed drifts)
        runs[1:1] = [(args.single, False), (args.single, False), (args.single, "auto")]
    steps = Steps(len(runs), stderr_say(args.quiet))
    for spec, multi in runs:
        if not Path(spec).exists():
            raise SourceError(f"{spec}: no such video")
        kw = {} if args.detect_every is None else {"detect_every": args.detect_every}
        if args.check_every is not None:
            kw["auto_check_every"] = args.check_every
        steps.start()
        rows.append(_measure(spec, multi, frames, args.warmup, pose_workers=args.pose_workers, **kw))
        steps.done(f"pose on {Path(spec).name} ({rows[-1]['mode']})")
    if args.single:
        rows[0:4] = [_mean(rows[0], rows[3]), _mean(rows[1], rows[2])]
    table = Table(title=f"pose extraction on {platform.processor() or platform.machine()}, "
                        f"{os.cpu_count()} logical CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    for col in ("video", "mode", "pose workers", "frames", "frames/s", "ms/frame", "person-frames", "ms/person-frame",
                "ms/pose call", "ms/detector run", "ms/decode"):
        table.add_column(col, justify="left" if col in ("video", "mode") else "right")
    for r in rows:
        table.add_row(r["video"], r["mode"], str(r["workers"]), str(r["frames"]), f"{r['fps']:.2f}", f"{r['ms_frame']:.1f}",
                      str(r["person_frames"]), f"{r['ms_person_frame']:.1f}",
                      f"{r['ms_pose_call']:.1f} ({r['pose_calls']})",
                      f"{r['ms_detect']:.0f} ({r['detector_runs']})", f"{r['ms_decode']:.1f}")
    show(Console(width=185), table)
    if args.single and rows[1]["fps"] > 0:
        print(f"single walker with / without the second-person check, frames/s: {rows[0]['fps'] / rows[1]['fps']:.2f}"
              f" ({rows[0]['crowded']} frames dropped as crowded)")
    if args.single and args.multi and rows[0]["fps"] > 0:
        print(f"multi / single frames/s: {rows[2]['fps'] / rows[0]['fps']:.2f}")
    print("ms/frame and ms/person-frame exclude decoding; ms/pose call counts every MediaPipe call "
          "(also those that found nobody); frames/s includes decoding; "
          f"the first {args.warmup} frames of each video are not timed"
          + ("; the single walker is timed twice per row, in A B B A order." if args.single else "."))
    return 0
