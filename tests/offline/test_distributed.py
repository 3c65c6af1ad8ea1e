"""Encoder training under torchrun: two CPU processes (gloo) sharing each batch train the model one process
trains (same batches, contrastive negatives gathered from the whole batch), within float round-off."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cages.io import load_torch
from offline.datasets.base import WindowSet
from offline.training.common import read_jsonl
from offline.training.config import TrainConfig
from offline.training.encoder import train_encoder

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys
import numpy as np
from offline.datasets.base import WindowSet
from offline.training.config import TrainConfig
from offline.training.encoder import train_encoder
z = np.load(sys.argv[1], allow_pickle=False)
ws = WindowSet(z["w"], z["p"], dataset="BIWI", layout="kinect_v1", recording=z["r"], start=z["s"])
train_encoder(ws, TrainConfig(**json.loads(sys.argv[3])), sys.argv[2], progress=False)
"""


def _windows(n=90):
    rng = np.random.default_rng(0)
    rec = np.repeat(np.arange(3), n // 3)
    return WindowSet(rng.normal(size=(n, 6, 20, 3)), rec, dataset="BIWI", layout="kinect_v1", recording=rec,
                     start=np.tile(np.arange(n // 3) * 3, 3))


@pytest.mark.slow
@pytest.mark.parametrize("mode,batch", [("faithful", 32), ("improved", 25)])
def test_two_processes_train_what_one_process_trains(tmp_path, mode, batch):
    # improved: shuffled anchor + partner batches of 24 (half 12 anchors), split 12/12; batch 25 -> half 12
    cfg = dict(dataset="BIWI", mode=mode, hidden=16, batch_size=batch, epochs=2, device="cpu", seed=0)
    ws = _windows()
    one = train_encoder(ws, TrainConfig(**cfg), tmp_path / "one", progress=False)
    np.savez(tmp_path / "w.npz", w=ws.windows, p=ws.pids, r=ws.recording, s=ws.start)
    (tmp_path / "job.py").write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(tmp_path / "job.py"), str(tmp_path / "w.npz"), str(tmp_path / "two"), json.dumps(cfg)],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    a, b = load_torch(one), load_torch(tmp_path / "two" / "encoder.pt")
    assert a.keys() == b.keys()
    for k in a:  # stated tolerance: 1e-5 absolute on every weight (float sums in another order)
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-5), (k, (a[k] - b[k]).abs().max())
    la, lb = read_jsonl(tmp_path / "one" / "log.jsonl"), read_jsonl(tmp_path / "two" / "log.jsonl")
    assert len(la) == len(lb) == 2
    for ra, rb in zip(la, lb):
        for key in ("loss", "rec", "la", "con", "l2"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-5, abs=1e-6), key
        assert ra["batches"] == rb["batches"] > 0
    json_two = json.loads((tmp_path / "two" / "encoder.json").read_text())
    assert json_two["train_windows"] == json.loads((tmp_path / "one" / "encoder.json").read_text())["train_windows"]
