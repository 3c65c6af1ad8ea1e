#!/bin/bash
# The four cross-validation folds by subject of issue #17 (docs/evaluation.md, "Cross-validation by subject").
# usage: docs/ucalgary_cv/cv.sh NAME RUNS [extra `cagereid evaluate` flags...]
#   reports in runs/cv/NAME/cv_<fold>/, finished encoder runs (and the synthetic pretraining) in RUNS, reused.
# Then: python docs/ucalgary_cv/summary.py NAME   (the six goal numbers per fold and their mean)
# EVAL="python docs/ucalgary_cv/speed_finetune.py" RATES=1,0.7 docs/ucalgary_cv/cv.sh ... runs the speed variant.
set -e
if [ $# -lt 2 ]; then
  echo "usage: docs/ucalgary_cv/cv.sh NAME RUNS [extra cagereid evaluate flags...]" >&2
  exit 2
fi
NAME=$1; RUNS=$2; shift 2
DATA=${DATA:-../shared/data/ucalgary_gait}
for S in 1,3,5,7,9,12,14 2,4,6,8,11,13 1,2,3,4,5,6,7 8,9,11,12,13,14; do
  OMP_NUM_THREADS=1 ${EVAL:-cagereid} evaluate --dataset UCALGARY --data-root "$DATA" --length 6 \
     --protocol p2 --distance euclidean --seeds 3 --encoder-data run1 --subjects $S --runs "$RUNS" \
     --out "runs/cv/$NAME/cv_$S" -q "$@"
done
