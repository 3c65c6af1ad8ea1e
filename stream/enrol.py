"""Enrolment: windows of a person into the gallery (embedded with the model), and the synthetic walkers that
`cagereid demo` and `cagereid soak` enrol. Used by the `enroll`, `demo` and `soak` commands."""
from __future__ import annotations


def enroll_windows(gallery_path, name: str, windows, encoder, source: str = "") -> int:
    """Embed ``windows (N, f, J, 3)`` with ``encoder`` and store the embeddings with their windows for ``name``
    in one transaction (the windows let `cagereid gallery reembed` move the gallery to another model).
    ``gallery_path``: a file or a ``postgresql://`` URL."""
    import numpy as np

    from stream.gallery import open_gallery

    windows = np.asarray(windows, np.float32)
    emb = encoder.embed(windows)
    with open_gallery(gallery_path) as g:
        return g.enroll(name, emb, encoder.fingerprint, source=source, windows=windows)


def finite_source(spec: str, seconds: float | None) -> str:
    """A synthetic source for enrolment ends: one walk unless the spec says ``walks=K`` (``walks=0``, endless,
    needs ``--seconds``)."""
    from stream.errors import SourceError
    from stream.producer import parse_synthetic

    spec = str(spec)
    if not (spec == "synthetic" or spec.startswith("synthetic:")):
        return spec
    s = parse_synthetic(spec)
    if "walks=" not in spec:
        return spec + ("," if ":" in spec else ":") + "walks=1"
    if s.walks == 0 and seconds is None:
        raise SourceError(f"{spec}: walks=0 never ends; give walks=K or --seconds")
    return spec


def enrol_synthetic(gallery_path, encoder, people: int, known: int, seed: int, stride: int, fps: float,
                    walks: int = 3, frames: int = 240) -> dict[str, int]:
    """Enrol walkers ``0..known-1`` of the synthetic population from ``walks`` walks each."""
    import numpy as np

    from stream.producer import open_observations, walker_name
    from stream.windower import windows_of_source

    out = {}
    for i in range(known):
        spec = f"synthetic:people={people},seed={seed},ids={i},walks={walks},frames={frames},walk_seed=1"
        obs, _ = open_observations(spec, encoder.layout, fps)
        per_track = windows_of_source(obs, encoder.f, stride, layout=encoder.layout)
        for k, windows in enumerate(per_track.values()):  # one session per walk: calibration compares walks
            out[walker_name(i)] = out.get(walker_name(i), 0) + enroll_windows(
                gallery_path, walker_name(i), np.stack(windows), encoder, source=f"{spec}#walk{k}")
    return out


def frame_progress(obs, spec: str, seconds: float | None, enabled: bool = True):
    """Yield the observations of ``obs`` unchanged while a bar on stderr counts the source's frames, with the
    time left when the length is known (a video file; a camera with ``seconds``). Recordings and synthetic
    walkers take no time and get no bar."""
    spec = str(spec)
    quick = spec.startswith("synthetic") or spec.endswith(".npz")
    if not enabled or quick:
        yield from obs
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    total = None
    if not spec.isdigit():
        from pose.sources import open_source

        src = open_source(spec)
        try:
            total, fps = src.expected_frames(), src.fps
        finally:
            src.close()
        if total is not None and seconds is not None and fps:
            total = min(total, int(seconds * fps) + 1)
    with Progress(TextColumn("[bold]enrol[/] reading poses"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("frames", total=total)
        first = None
        for o in obs:
            first = o.frame if first is None else first
            bar.update(task, completed=o.frame - first + 1)
            yield o
        if total is not None:  # the source ended (frames without anybody yield no observations)
            bar.update(task, completed=total)


def preview(groups, sink, name: str, track: int | None = None):
    """Yield the observations of video frame ``groups`` (`stream.producer.FrameGroup`) while showing each frame
    on ``sink`` (`stream.overlay.OverlaySink`): the person being enrolled (``track``, or the track seen in the
    most frames so far, as `enroll` picks the longest) is tagged ``<name> (enrolling)``, the others ``id N``."""
    seen: dict[int, int] = {}
    for group in groups:
        for o in group:
            seen[o.track] = seen.get(o.track, 0) + 1
        who = track if track is not None else (max(seen, key=seen.get) if seen else None)
        if getattr(group, "image", None) is not None:
            sink.offer(group.image, group.shown, group.frame_index,
                       {who: (f"{name} (enrolling)", None)} if who is not None else {})
        yield from group
