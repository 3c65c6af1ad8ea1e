"""`cagereid` with the UCalgary harness fine-tuning every encoder also on each walk played at the speeds in $RATES
(e.g. RATES=1,0.7; `offline.evaluate.run_ucalgary(speed_rates=...)`). Measured in issue #17's third round, not kept.
usage: RATES=1,0.7 python docs/ucalgary_cv/speed_finetune.py evaluate --dataset UCALGARY ... (use its own --runs)"""
import functools
import os
import sys

import offline.evaluate as E
from cagereid.cli import main

E.run_ucalgary = functools.partial(E.run_ucalgary, speed_rates=tuple(float(x) for x in os.environ["RATES"].split(",")))
sys.exit(main(sys.argv[1:]))
