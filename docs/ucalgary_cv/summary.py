"""The six goal numbers of issue #17 per fold (P2, Euclidean, Run1 encoder; same window Rank-1 / mAP, same sequence
Rank-1 | cross window Rank-1 / mAP, cross sequence Rank-1 [mean]) and their mean over the folds, from the reports
that docs/ucalgary_cv/cv.sh writes. usage: python docs/ucalgary_cv/summary.py NAME [NAME ...] [--root runs/cv]"""
import argparse
import json
from pathlib import Path

import numpy as np

FOLDS = ["1,3,5,7,9,12,14", "2,4,6,8,11,13", "1,2,3,4,5,6,7", "8,9,11,12,13,14"]


def six(report: Path, method: str = "CAGEs (Run1 encoder)") -> list[float]:
    summ = json.loads(report.read_text())["summary"]
    out = []
    for split in ("UCALGARY-same", "UCALGARY-cross"):
        cells = {s["level"]: s for s in summ if s["method"] == method and s["protocol"] == "P2"
                 and s["distance"] == "euclidean" and s["split"] == split}
        w, q = cells["window"], cells["sequence"]
        out += [100 * w["rank1"]["mean"], 100 * w["mAP"]["mean"], 100 * q["rank1"]["mean"]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="+")
    ap.add_argument("--root", default="runs/cv")
    ap.add_argument("--method", default="CAGEs (Run1 encoder)")
    args = ap.parse_args()
    for name in args.names:
        cells, means = [], []
        for fold in FOLDS:
            rep = Path(args.root) / name / f"cv_{fold}" / "report.json"
            if not rep.is_file():
                cells.append("--")
                continue
            v = six(rep, args.method)
            means.append(np.mean(v))
            cells.append(f"{v[0]:.1f}/{v[1]:.1f} {v[2]:.1f} | {v[3]:.1f}/{v[4]:.1f} {v[5]:.1f} [{np.mean(v):.1f}]")
        mean = f"  mean {np.mean(means):.2f}" if len(means) == len(FOLDS) else ""
        print(f"{name}: " + "  ".join(cells) + mean)


if __name__ == "__main__":
    main()
