"""`cagereid extract`: video / camera / image folder -> per-person 3D skeleton tracks (.npz), optional overlay
video and OpenPose-style JSON."""
from __future__ import annotations

import argparse
from pose.errors import PoseError

HELP = "Extract per-person 3D skeleton tracks (MediaPipe Pose) from a video, camera or image folder"




def _workers(value: str):
    from pose.workers import workers_arg

    return workers_arg(value)


def _multi(value: str):
    v = value.lower()
    if v in ("auto",):
        return "auto"
    if v in ("yes", "true", "1", "on", "multi"):
        return True
    if v in ("no", "false", "0", "off", "single"):
        return False
    raise argparse.ArgumentTypeError(f"expected auto, yes or no, got {value!r}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True,
                   help="video file, image folder, camera index (0) or stream URL")
    p.add_argument("--out", required=True, help="output .npz of skeleton tracks (read with pose.extract.load_tracks)")
    p.add_argument("--overlay", metavar="VIDEO", help="also write a video (.mp4/.avi) with skeletons and track ids")
    p.add_argument("--format", choices=("npz", "openpose"), default="npz",
                   help="openpose: also write 2D keypoints as OpenPose BODY_25 per-frame *_keypoints.json")
    p.add_argument("--openpose-dir", metavar="DIR",
                   help="folder for --format openpose (default: <out stem>_openpose next to --out)")
    p.add_argument("--multi-person", type=_multi, default="auto", metavar="auto|yes|no",
                   help="auto (default): full-frame pose while there is one large person, detector + tracker "
                        "otherwise; yes: always detect and track; no: one person, full frame")
    p.add_argument("--layouts", default="kinect_v1,casia14",
                   help="3D layouts stored besides mediapipe33 (comma-separated; default kinect_v1,casia14)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--fps", type=float, help="frame rate of an image folder (default: 25) or override for a video")
    p.add_argument("--detect-every", type=int, default=10, help="run the people detector every N frames (default: 10)")
    p.add_argument("--check-every", type=int, default=5, metavar="N",
                   help="auto mode with one person: run the people detector every N frames (in a thread, beside "
                        "the pose) to notice a second person; one who overlaps the tracked person makes those "
                        "frames dropped, flagged 'crowded' (default: 5)")
    p.add_argument("--pose-workers", type=_workers, default="auto", metavar="auto|N",
                   help="multi-person mode: people posed in parallel in N worker processes "
                        "(default: auto = one per CPU core, at most 4; 0 = in this process)")
    p.add_argument("--detector-height", type=int, default=864,
                   help="resize frames to this height for the HOG detector (864; small people need upscaling)")
    p.add_argument("--min-crop-height", type=int, default=256, help="upscale person crops to this height (256)")
    p.add_argument("--min-visibility", type=float, default=0.0,
                   help="landmarks below this visibility make the joints built from them invalid (default 0: "
                        "use MediaPipe's estimate of hidden landmarks too, pose.extract.MIN_VISIBILITY)")
    p.add_argument("--min-track-frames", type=int, default=5, help="drop tracks found in fewer frames (5)")
    p.add_argument("--max-gap", type=int, default=5, help="interpolate gaps up to this many frames (flagged) (5)")
    p.add_argument("--focal-px", type=float,
                   help="camera focal length in pixels for the root-position estimate (default: larger image side)")
    p.add_argument("--no-smooth", action="store_true", help="disable One-Euro smoothing")
    p.add_argument("--model-complexity", type=int, default=1, choices=(0, 1, 2),
                   help="MediaPipe pose model: 1 (full, bundled; default); 0/2 need their model file installed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    out = Path(args.out)
    if out.suffix != ".npz":
        raise PoseError(f"{out}: --out must end in .npz")
    openpose_dir = None
    if args.format == "openpose":
        openpose_dir = Path(args.openpose_dir) if args.openpose_dir else out.with_name(out.stem + "_openpose")
    elif args.openpose_dir:
        raise PoseError("--openpose-dir needs --format openpose")
    layouts = tuple(x.strip() for x in args.layouts.split(",") if x.strip())
    source = args.source
    if args.fps or args.max_frames:
        from pose.sources import open_source

        source = open_source(args.source, max_frames=args.max_frames, fps=args.fps)
    try:
        res = _extract(args, source, out, openpose_dir, layouts)
    except KeyboardInterrupt as exc:
        print(f"interrupted; {exc}" if str(exc) else "interrupted", file=sys.stderr)
        return 130
    print(summary_text(res, out, args.overlay, openpose_dir))
    return 0


def _extract(args, source, out, openpose_dir, layouts):
    from pose.extract import extract

    return extract(source, out_npz=out, overlay=args.overlay, openpose_dir=openpose_dir, layouts=layouts,
                   progress=not args.quiet, multi_person=args.multi_person,
                   min_track_frames=args.min_track_frames, max_gap=args.max_gap,
                   detect_every=args.detect_every, auto_check_every=args.check_every, pose_workers=args.pose_workers, detector_height=args.detector_height,
                   min_crop_height=args.min_crop_height, min_visibility=args.min_visibility,
                   smooth=not args.no_smooth, model_complexity=args.model_complexity, focal_px=args.focal_px)


def _runs(frames) -> str:
    """``[3, 4, 5, 9]`` -> ``'3-5, 9'``."""
    out, start, prev = [], None, None
    for f in [int(x) for x in frames] + [None]:
        if start is not None and (f is None or f != prev + 1):
            out.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = None
        if start is None:
            start = f
        prev = f
    return ", ".join(out)


def summary_text(res, out, overlay=None, openpose_dir=None) -> str:
    s = res.stats
    pct = 100.0 * res.frames_with_pose / max(res.n_frames, 1)
    lines = [f"{res.source}: {res.n_frames} frames, a pose in {res.frames_with_pose} ({pct:.1f}%), "
             f"{len(res.tracks)} track(s); mode {s.get('mode')}"
             + (f" (multi from frame {s['switched_to_multi_at']})" if s.get("switched_to_multi_at") is not None
                else ""),
             f"speed: {s.get('fps')} frames/s, {s.get('ms_per_person_frame')} ms per pose call, "
             f"{s.get('detector_runs')} detector runs"]
    for t in sorted(res.tracks, key=lambda t: -t.n_found)[:20]:
        crowded = "" if t.crowded is None or not t.crowded.any() else \
            f", dropped {int(t.crowded.sum())} (another person overlapping: frames {_runs(t.frames[t.crowded])})"
        lines.append(f"  track {t.track_id}: frames {int(t.frames[0])}-{int(t.frames[-1])}, "
                     f"found {t.n_found}/{len(t)}, filled {int(t.filled.sum())}{crowded}")
    if len(res.tracks) > 20:
        lines.append(f"  ... {len(res.tracks) - 20} more")
    lines.append(f"wrote {out}" + (f", {overlay}" if overlay else "")
                 + (f", OpenPose JSON in {openpose_dir}" if openpose_dir else ""))
    return "\n".join(lines)
