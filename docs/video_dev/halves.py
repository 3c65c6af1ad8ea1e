"""Write a same-walk manifest: every track of a tracks file with at least --min-frames frames, cut in halves
(first half gallery, second half probe), for `cagereid evaluate --tracks` (issue #14's vtest halves check).

    python docs/video_dev/halves.py TRACKS/opencv_vtest.npz TRACKS/vtest_halves.csv --min-frames 100
    cagereid evaluate --tracks TRACKS/vtest_halves.csv --out runs/vtest_halves
"""
import argparse
import csv
import os
from pathlib import Path

from pose.extract import load_tracks

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("tracks", help="a tracks file from `cagereid extract` (.npz)")
p.add_argument("out", help="manifest to write (.csv, next to the tracks file or anywhere)")
p.add_argument("--min-frames", type=int, default=100, help="frames a track must span (default 100: 4 s at 25 fps)")
a = p.parse_args()
res = load_tracks(a.tracks)
out = Path(a.out)
rel = os.path.relpath(Path(a.tracks).resolve(), out.resolve().parent)
rows = [(rel, f"{Path(a.tracks).stem}_{t.track_id}", role, t.track_id, part)
        for t in res.tracks if len(t.frames) >= a.min_frames
        for role, part in (("gallery", "first"), ("probe", "second"))]
tmp = out.with_name(out.name + ".tmp")
with open(tmp, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["clip", "person", "role", "track", "part"])
    w.writerows(rows)
os.replace(tmp, out)
print(f"{out}: {len(rows) // 2} tracks of at least {a.min_frames} frames, each cut in halves")
