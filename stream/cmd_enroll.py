"""`cagereid enroll`: add a person to the gallery from a video, a camera, a skeleton recording or a synthetic walker."""
from __future__ import annotations

import argparse

HELP = "Enrol a person: walk in front of a camera / give a video or skeleton file; stores their gait embeddings"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from stream.options import DEFAULT_GALLERY, add_common

    p.add_argument("--name", required=True, help="the person's name (shown on the dashboard; letters, digits, "
                   "spaces and . _ - ' at most 64 characters)")
    p.add_argument("--source", required=True, help="video file, camera index (0), skeleton recording (.npz from "
                   "`cagereid extract`) or synthetic:ids=N,... (one synthetic walker; one walk unless walks=K)")
    p.add_argument("--gallery", default=DEFAULT_GALLERY, help=f"gallery file (created if needed) or postgresql:// URL "
                   f"(default: {DEFAULT_GALLERY})")
    add_common(p)
    p.add_argument("--track", type=int, default=None, help="which track is the person (default: the longest)")
    p.add_argument("--seconds", type=float, default=None, help="use at most this many seconds (default: all; "
                   "10 for a camera)")
    p.add_argument("--min-windows", type=int, default=5, help="refuse enrolments with fewer windows (default: 5)")
    from cagereid.flags import add_quiet

    add_quiet(p, "no progress bar on stderr while a video is read")
    p.add_argument("--show", action="store_true", help="video or camera: show the frames in a window with the person "
                   "being enrolled tagged (needs a display)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from stream.config import load_config
    from stream.errors import SourceError, StreamError
    from stream.gallery import check_name
    from stream.identify import load_encoder
    from stream.producer import check_source, has_images, open_frames, open_observations
    from stream.enrol import enroll_windows, finite_source, frame_progress
    from stream.windower import windows_of_source

    name = check_name(args.name, "--name")
    if args.min_windows < 1 or (args.seconds is not None and not args.seconds > 0):
        raise StreamError("need --min-windows >= 1 and --seconds > 0")
    cfg = load_config(args.config, device=args.device)
    seconds = args.seconds if args.seconds is not None else (10.0 if str(args.source).isdigit() else None)
    source = finite_source(args.source, seconds)
    check_source(source, open_it=True)
    sink = None
    if args.show:
        from stream.overlay import OverlaySink, check_show

        if not has_images(source):
            raise StreamError(f"{args.source}: --show draws on video frames; give a video file or camera")
        check_show(True)
    encoder = load_encoder(args.model, cfg.device)
    if args.show:
        from stream.enrol import preview

        sink = OverlaySink(None, show=True, window=f"cagereid enroll {name}")
        groups, _ = open_frames(source, encoder.layout, cfg.fps, keep_images=True)
        obs = preview(groups, sink, name, args.track)
    else:
        obs, _ = open_observations(source, encoder.layout, cfg.fps)
    obs = frame_progress(obs, source, seconds, enabled=not args.quiet)
    try:
        per_track = windows_of_source(obs, encoder.f, cfg.stride, track=args.track, max_seconds=seconds,
                                      layout=encoder.layout)
    finally:
        if sink is not None:
            sink.close()
    if not per_track:
        raise SourceError(f"{args.source}: no complete {encoder.f}-frame skeleton windows"
                          + (f" for track {args.track}" if args.track is not None else ""))
    track = args.track if args.track is not None else max(per_track, key=lambda t: len(per_track[t]))
    windows = np.stack(per_track[track])
    if len(windows) < args.min_windows:
        raise StreamError(f"{args.source}: only {len(windows)} windows of track {track} (need {args.min_windows}); "
                        "use a longer walk")
    from stream.gallery import redact

    n = enroll_windows(args.gallery, name, windows, encoder, source=f"{source}#track{track}")
    others = f" ({len(per_track) - 1} other tracks ignored)" if len(per_track) > 1 else ""
    print(f"enrolled {name}: {n} embeddings from track {track} of {args.source}{others} into {redact(args.gallery)} "
          f"(model {encoder.fingerprint})")
    return 0
