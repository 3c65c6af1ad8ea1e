"""Enrolment: windows of a person into the gallery (embedded with the model), and the synthetic walkers that
`cagereid demo` and `cagereid soak` enrol. Used by the `enroll`, `demo` and `soak` commands."""
from __future__ import annotations


def enroll_windows(gallery_path, name: str, windows, encoder, source: str = "") -> int:
    """Embed ``windows (N, f, J, 3)`` with ``encoder`` and store them for ``name`` in one transaction."""
    import numpy as np

    from stream.gallery import Gallery

    emb = encoder.embed(np.asarray(windows, np.float32))
    with Gallery(gallery_path) as g:
        return g.enroll(name, emb, encoder.fingerprint, source=source)


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
