"""`cagereid demo`: the whole live pipeline on the embedded default, no camera, dataset or network needed.

1. Loads the small encoder shipped in ``cages/pretrained`` (trained by `cagereid train` on synthetic walkers;
   its ``encoder.json`` records the commands).
2. Enrols ``--known`` synthetic walkers into a fresh gallery from three 8-second enrolment walks each.
3. Runs the live pipeline (producer -> windower -> identify processes over ZeroMQ) on *new* walks of those
   people plus ``--strangers`` people who were never enrolled, all walking at the same time, with the dashboard.
4. Prints a summary: per track the decided identity vs the truth, accuracy on enrolled walkers, how many
   strangers were called "unknown", and the frame -> decision latency.
"""
from __future__ import annotations

import argparse
import time

HELP = "Live re-identification demo on synthetic walkers with the shipped encoder (no camera or data needed)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cagereid.flags import alias
    from stream.options import add_common

    p.add_argument("--known", type=int, default=5, help="walkers to enrol (default: 5)")
    p.add_argument("--strangers", type=int, default=3, help="walkers never enrolled (default: 3)")
    p.add_argument("--walk-seconds", type=float, default=12.0, help="length of the live walks (default: 12)")
    alias(p, "--seconds", "--walk-seconds", "walk_seconds", type=float, metavar="S")
    p.add_argument("--seed", type=int, default=7, help="population seed (default: 7)")
    p.add_argument("--gallery", default=None, help="keep the demo gallery in this file (default: a temporary file)")
    add_common(p)
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: when "
                   "the walks end)")
    p.add_argument("--no-dashboard", action="store_true", help="no full-screen view, only the summary")


def summarise(state, known_names: set[str]) -> dict:
    """Final decision per track vs the truth carried by the synthetic source."""
    from stream.decision import PENDING, UNKNOWN

    rows, correct, known_n, strangers_n, strangers_unknown, unknown_n = [], 0, 0, 0, 0, 0
    for r in sorted(state.tracks.values(), key=lambda r: r.track):
        is_known = r.label in known_names
        expected = r.label if is_known else UNKNOWN
        ok = r.identity == expected
        known_n += is_known
        strangers_n += not is_known
        correct += is_known and ok
        strangers_unknown += (not is_known) and r.identity == UNKNOWN
        unknown_n += r.identity in (UNKNOWN, PENDING)
        rows.append({"track": r.track, "truth": r.label, "enrolled": is_known, "identity": r.identity,
                     "confidence": r.confidence, "windows": r.windows, "ok": ok})
    p50, p95 = state.latency()
    n = len(rows)
    return {"rows": rows, "accuracy": correct / known_n if known_n else float("nan"),
            "strangers_rejected": strangers_unknown / strangers_n if strangers_n else float("nan"),
            "unknown_rate": unknown_n / n if n else float("nan"),
            "correct_tracks": sum(r["ok"] for r in rows), "tracks": n,
            "latency_p50_ms": p50, "latency_p95_ms": p95, "decisions": state.decisions}


def print_report(summary: dict, console, enrol_s: float, run_s: float, accept: str) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table(title="cagereid demo: final decision per track")
    for col in ("track", "truth", "enrolled", "decided identity", "confidence", "windows", ""):
        t.add_column(col)
    for r in summary["rows"]:
        mark = Text("✓", style="green") if r["ok"] else Text("✗", style="bold red")
        t.add_row(str(r["track"]), Text(r["truth"]), "yes" if r["enrolled"] else "no (stranger)", Text(r["identity"]),
                  f"{r['confidence']:.0%}", str(r["windows"]), mark)
    console.print(t)
    s = summary
    console.print(
        f"accuracy on enrolled walkers {s['accuracy']:.0%}   strangers called unknown {s['strangers_rejected']:.0%}   "
        f"unknown rate {s['unknown_rate']:.0%}   correct tracks {s['correct_tracks']}/{s['tracks']}\n"
        f"latency frame→decision p50 {s['latency_p50_ms']:.1f} ms, p95 {s['latency_p95_ms']:.1f} ms over "
        f"{s['decisions']} decisions   enrolment {enrol_s:.1f}s, live run {run_s:.1f}s   {accept}", markup=False)


def run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from rich.console import Console
    from rich.markup import escape

    from stream.dashboard import drive, print_summary
    from stream.config import load_config
    from stream.errors import StreamError
    from stream.gallery import Gallery
    from stream.identify import DEMO_MODEL, calibrate, load_encoder
    from stream.pipeline import Pipeline
    from stream.enrol import enrol_synthetic
    from stream.producer import walker_name

    if args.known < 1 or args.strangers < 0 or args.known + args.strangers > 20 or args.walk_seconds < 1:
        raise StreamError("need 1 <= --known, 0 <= --strangers, known + strangers <= 20 and --walk-seconds >= 1")
    cfg = load_config(args.config, device=args.device)
    model = args.model or DEMO_MODEL  # the small synthetic-walker encoder unless --model
    console = Console()
    people = args.known + args.strangers
    with tempfile.TemporaryDirectory(prefix="cagereid-demo-") as tmp:
        gallery = Path(args.gallery) if args.gallery else Path(tmp) / "gallery.sqlite"
        if gallery.exists():
            raise StreamError(f"{gallery}: exists; the demo writes a fresh gallery (remove it or pick another file)")
        t0 = time.time()
        console.print(f"[bold]cagereid demo[/bold]: loading the encoder "
                      f"({escape(str(model))}) ...")
        encoder = load_encoder(model, cfg.device)
        console.print(f"model {escape(encoder.fingerprint)} (f={encoder.f}, {escape(str(encoder.layout))}) on {escape(str(encoder.device))}; enrolling "
                      f"{args.known} synthetic walkers ({', '.join(walker_name(i) for i in range(args.known))}) ...")
        enrol_synthetic(gallery, encoder, people, args.known, args.seed, cfg.stride, cfg.fps)
        with Gallery(gallery) as g:
            accept = calibrate(g.load(encoder.fingerprint), cfg)
        enrol_s = time.time() - t0
        frames = int(round(args.walk_seconds * cfg.fps))
        source = (f"synthetic:people={people},seed={args.seed},frames={frames},walks=1,walk_seed=2000")
        console.print(f"live: {people} walkers at once ({args.known} enrolled + {args.strangers} strangers), "
                      f"{args.walk_seconds:.0f}s walks; source {source}", markup=False)
        t1 = time.time()
        with Pipeline(cfg, source, model=str(model), gallery=gallery) as pipe:
            pipe.state.title = "cagereid demo"
            pipe.start()
            reason = drive(pipe, args.duration, not args.no_dashboard, console)
            stopped = time.time()
        run_s = stopped - t1
        if args.no_dashboard or not console.is_terminal:
            print_summary(pipe.state, console, stopped)
        summary = summarise(pipe.state, {walker_name(i) for i in range(args.known)})
        acc = f"acceptance score {accept:.3f} (calibrated on the gallery)" if accept is not None else ""
        print_report(summary, console, enrol_s, run_s, acc)
        if reason == "interrupted":
            return 130
    return 0
