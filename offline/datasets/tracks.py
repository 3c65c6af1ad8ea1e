"""Training windows from a site's own unlabeled footage: the skeleton tracks files of ``cagereid extract``.

Every track of every file is converted to the model's layout exactly as live converts it (MediaPipe landmarks with
the live visibility threshold, `pose.tracks_file.TrackSequence.layout_joints`), its missing joints are filled by
the live rule (`cages.windows.MissingJoints`, via `offline.video_manifest.windows_of_track`) and it is cut into
complete windows. There are no identities: each ``(file, track)`` is its own ``recording`` and ``start`` is the
window's first frame, so the metadata positives of encoder training (`offline.training.encoder`) pair windows of
the same track. ``pids`` hold the recording id too (never used as labels).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from offline.datasets.base import DatasetError, WindowSet


def find_tracks_files(paths) -> list[Path]:
    """The ``.npz`` files named by ``paths`` (files, or folders whose ``*.npz`` files are taken, sorted).
    Raises `DatasetError` when a path does not exist or nothing is found."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.npz"))
            if not found:
                raise DatasetError(f"{p}: no tracks files (.npz from `cagereid extract`) in this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise DatasetError(f"{p}: no such tracks file or folder")
    if not out:
        raise DatasetError("no tracks files given (pass .npz files from `cagereid extract`, or a folder of them)")
    return list(dict.fromkeys(q.resolve() for q in out))


def tracks_windows(paths, layout: str, f: int, stride: int = 1, policy: str | None = None,
                   min_visibility: float | None = None) -> WindowSet:
    """A `WindowSet` of every track of the tracks files ``paths`` (see `find_tracks_files`), in ``layout`` with
    window length ``f``. ``meta["tracks"]`` lists ``(file, track id, windows)`` per recording id.
    A file that is not a tracks file raises `DatasetError` naming it."""
    from offline.video_manifest import windows_of_track
    from pose.extract import MIN_VISIBILITY, load_tracks
    from pose.sources import SourceError

    files = find_tracks_files(paths)
    mv = MIN_VISIBILITY if min_visibility is None else min_visibility
    wins, recs, starts, listing = [], [], [], []
    for path in files:
        try:
            res = load_tracks(path)
        except SourceError as exc:
            raise DatasetError(f"{exc} (pass the .npz files written by `cagereid extract`)") from None
        for tr in res.tracks:
            try:
                joints, valid = tr.layout_joints(layout, mv)
            except (KeyError, ValueError) as exc:
                raise DatasetError(f"{path}: track {tr.track_id} cannot be converted to {layout} ({exc})") from None
            w, s = windows_of_track(joints, valid, layout, f, stride, policy, with_starts=True)
            rec = len(listing)
            listing.append((str(path), int(tr.track_id), len(w)))
            if len(w):
                wins.append(w)
                recs.append(np.full(len(w), rec, np.int64))
                starts.append(np.asarray(tr.frames)[s].astype(np.int64))
    if wins:
        windows = np.concatenate(wins)
    else:
        from pose.layouts import get_layout

        windows = np.zeros((0, f, get_layout(layout).J, 3))
    rec = np.concatenate(recs) if recs else np.zeros(0, np.int64)
    return WindowSet(windows, rec.copy(), "TRACKS", "train", layout, recording=rec,
                     start=np.concatenate(starts) if starts else np.zeros(0, np.int64),
                     meta={"files": [str(p) for p in files], "tracks": listing, "f": f, "stride": stride})
