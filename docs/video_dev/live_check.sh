#!/usr/bin/env bash
# Live, end to end, on the development clips (README, "Side views and missing joints"):
#   docs/video_dev/live_check.sh TRACKS OUT [--model DIR ...]
# TRACKS: the tracks files made as described in ucb_vtest.csv (cagereid extract per clip). Enrols ucb001 (side view
# 090_001_nm-01), ucb002 (060_002_bg-03) and vtest tracks 5 and 42 into OUT/g.sqlite, runs `cagereid live` on 001's
# 7 other clips and prints the final label of each clip's longest track; then runs live on the whole vtest file and
# counts the final labels of the tracks that are not enrolled (open set). Extra arguments go to enroll and live.
set -u
T=$1; OUT=$2; shift 2
C=${CAGEREID:-cagereid}
PY=${PYTHON:-python3}
mkdir -p "$OUT"; rm -f "$OUT/g.sqlite"
$C enroll --name ucb001 --source "$T/090_001_nm-01.npz" --gallery "$OUT/g.sqlite" "$@" >/dev/null 2>&1 || echo "enroll ucb001 failed"
$C enroll --name ucb002 --source "$T/060_002_bg-03.npz" --gallery "$OUT/g.sqlite" "$@" >/dev/null 2>&1 || echo "enroll ucb002 failed"
for t in 5 42; do  # (93 and 96, enrolled before 2026-12-02, no longer exist as track ids)
  $C enroll --name vtest$t --source "$T/opencv_vtest.npz" --track $t --gallery "$OUT/g.sqlite" "$@" >/dev/null 2>&1 \
    || echo "enroll vtest$t failed (no such track with windows in this extraction)"
done
final_label="$OUT/final_label.py"
cat > "$final_label" <<'PY'
import json, sys
from collections import Counter
recs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
by = {}
for r in recs:
    if r["type"] == "decision":
        by.setdefault(r["track"], []).append(r)
if sys.argv[2] == "vtest":
    enrolled = {int(x[5:]) for x in sys.argv[3:]}
    last = {t: rs[-1]["identity"] for t, rs in by.items() if t not in enrolled and rs[-1]["identity"] != "..."}
    named = sum(v != "unknown" for v in last.values())
    print(f"vtest: {len(last)} tracks not enrolled reached a decision; named {named}:", dict(Counter(last.values())))
elif not by:
    print(sys.argv[2], "no decisions")
else:
    t = max(by, key=lambda k: len(by[k]))
    last = by[t][-1]
    print(f"{sys.argv[2]}: {last['identity']} (best {last['best']}, score {last['score']:.3f}, {last['windows']} windows)")
PY
for c in 060_001_nm-01 075_001_nm-01 105_001_nm-01 120_001_bg-02 120_001_bg-03 060_001_bg-03 120_001_nm-01; do
  rm -f "$OUT/$c.jsonl"
  $C live --source "$T/$c.npz" --gallery "$OUT/g.sqlite" --no-dashboard --events "$OUT/$c.jsonl" "$@" >/dev/null 2>&1
  $PY "$final_label" "$OUT/$c.jsonl" "$c"
done
rm -f "$OUT/vtest.jsonl"
$C live --source "$T/opencv_vtest.npz" --gallery "$OUT/g.sqlite" --no-dashboard --events "$OUT/vtest.jsonl" "$@" >/dev/null 2>&1
enrolled=$($PY -c "
import sqlite3, sys; print(' '.join(r[0] for r in sqlite3.connect(sys.argv[1]).execute(\"select name from people where name like 'vtest%'\")))" "$OUT/g.sqlite")
$PY "$final_label" "$OUT/vtest.jsonl" vtest $enrolled
