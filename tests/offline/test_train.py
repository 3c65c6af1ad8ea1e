"""`cagereid train` end to end on a tiny synthetic BIWI, plus the pieces of the training loop."""
import json

import numpy as np
import pytest
import torch

from cages.features import CageExtractor
from offline.datasets.base import WindowSet
from offline.training.config import TrainConfig
from offline.training.encoder import _positive_index, sample_partners, tail_split, train_encoder
from offline.training.rn import load_rn, rn_scores
from offline.training.run import load_run_data, run_training

TINY = dict(hidden=16, batch_size=64, device="cpu", seed=0)


def test_modes_resolve_to_the_documented_defaults():
    f = TrainConfig(dataset="BIWI", mode="faithful", t=0.3).resolved()
    assert (f.t, f.l2, f.reduction, f.positives, f.val_frac, f.centre, f.rn_select, f.encoder_subset) == \
        (0.1, 0.02, "sum", "adjacent", 0.0, "none", "probe", True)
    assert TrainConfig(dataset="KGBD", mode="faithful").resolved().t == 0.5
    assert TrainConfig(dataset="CASIA_B", mode="faithful", t=0.3).resolved().t == 0.3  # CASIA-B honours --t
    i = TrainConfig(dataset="BIWI", t=0.3).resolved()
    assert (i.t, i.l2, i.reduction, i.positives, i.rn_select, i.centre) == (0.3, 0.0, "mean", "metadata", "val", "root")
    assert (f.readout, f.bone_weight, i.readout, i.bone_weight) == ("ap", 0.0, "head", 0.5)
    assert TrainConfig(dataset="KGBD").resolved().t == 0.5 and TrainConfig().resolved().epochs == 400
    e = TrainConfig(mode="faithful").encoder_config(20)
    assert e.dummy_copies and e.head_init == "normal" and e.decoder_input == "zero"


def test_tail_split_holds_out_the_end_of_each_recording_without_overlap():
    n = 40
    ws = WindowSet(np.zeros((n, 6, 3, 3)), np.repeat([1, 2], 20), recording=np.repeat([10, 20], 20),
                   start=np.tile(np.arange(20), 2))
    tr, va = tail_split(ws, 0.25)
    assert len(set(tr) & set(va)) == 0 and len(va) > 0
    for rec in (10, 20):
        t_end = (ws.start[tr][ws.recording[tr] == rec] + 6).max()
        assert t_end <= ws.start[va][ws.recording[va] == rec].min()  # no shared frame


def test_sampled_partners_are_same_recording_within_shift():
    rng = np.random.default_rng(0)
    rec = np.repeat([1, 2, 3], 50)
    start = np.tile(np.arange(50) * 2, 3)
    meta = _positive_index(rec, start, 10)
    idx = np.arange(150)
    for _ in range(3):
        p = sample_partners(meta, idx, rng)
        assert (rec[p] == rec[idx]).all() and (np.abs(start[p] - start[idx]) <= 10).all() and (p != idx).all()


def _losses(out):
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [r for r in rows if r["phase"] == "encoder"], [r for r in rows if r["phase"] == "rn"]


def test_train_end_to_end_on_synthetic_biwi(synth_biwi, tmp_path):
    root, splits = synth_biwi
    cfg = TrainConfig(dataset="BIWI", f=6, epochs=4, rn_epochs=30, **TINY)
    out = tmp_path / "run"
    summary = run_training(cfg, root, out, progress=False, command="test")
    enc, rn = _losses(out)
    assert len(enc) == 4 and enc[-1]["loss"] < enc[0]["loss"]  # self-supervised loss goes down
    n_people = len(np.unique(splits["train"].pids))
    chance = 1.0 / n_people
    assert summary["metrics"]["Walking"]["rank1"] > 2.5 * chance, summary
    for name in ("encoder.pt", "encoder.json", "rn.pt", "rn.json", "summary.json"):
        assert (out / name).is_file()
    meta = json.loads((out / "encoder.json").read_text())
    assert meta["layout"] == "kinect_v1" and meta["mode"] == "improved" and meta["f"] == 6 and meta["J"] == 20
    assert meta["features"]["centre"] == [0] and meta["command"] == "test" and "git_commit" in meta
    ext = CageExtractor.from_checkpoint(out, device="cpu")
    assert ext.f == 6 and ext.layout == "kinect_v1"
    w = splits["Walking"].windows[:5]
    assert ext.embed(w).shape[0] == 5 and ext.frame_level(w).shape == (5, 6, 16 * 3)
    assert ext.fingerprint == json.loads((out / "rn.json").read_text())["encoder_fingerprint"]

    # what the evaluation harness loads: the RN scores frame-level rows, classes are the person ids
    rn, classes = load_rn(out)
    scores = rn_scores(rn, ext.frame_level(w), 6)
    assert scores.shape == (5, n_people) and classes == sorted(np.unique(splits["train"].pids).tolist())

    # train_flag 0: the RN alone on the saved encoder; the encoder is untouched
    before = (out / "encoder.pt").read_bytes()
    again = run_training(cfg, root, out, train_flag=0, progress=False)
    assert (out / "encoder.pt").read_bytes() == before and "Walking" in again["metrics"]


def test_faithful_mode_runs_and_keeps_the_final_epoch(synth_biwi, tmp_path):
    root, splits = synth_biwi
    cfg = TrainConfig(dataset="BIWI", f=6, mode="faithful", epochs=2, rn_epochs=3, **TINY)
    summary = run_training(cfg, root, tmp_path / "f", progress=False)
    meta = json.loads((tmp_path / "f" / "encoder.json").read_text())
    assert meta["checkpoint"] == "final epoch" and meta["train_config"]["t"] == 0.1
    n = splits["train"].n
    assert meta["train_windows"] == n - -(-n // 3)  # BIWI: first N - ceil(N/3) windows only
    assert "probe" in summary["rn_selection"]
    sd = torch.load(tmp_path / "f" / "encoder.pt", weights_only=True)
    assert any(k.endswith("dummy_kernel") for k in sd)


def test_resume_continues_from_the_saved_epoch(synth_biwi, tmp_path):
    root, splits = synth_biwi
    train = splits["train"]
    out = tmp_path / "r"
    train_encoder(train, TrainConfig(dataset="BIWI", f=6, epochs=1, **TINY), out, device="cpu", progress=False)
    with pytest.raises(ValueError, match="different configuration"):
        train_encoder(train, TrainConfig(dataset="BIWI", f=6, epochs=2, lr=1e-3, **TINY), out, device="cpu",
                      progress=False, resume=True)
    # same run, more epochs: continues at epoch 2 instead of starting again
    train_encoder(train, TrainConfig(dataset="BIWI", f=6, epochs=2, **TINY), out, device="cpu", progress=False,
                  resume=True)
    enc, _ = _losses(out)
    assert [r["epoch"] for r in enc] == [1, 2]


def test_cli_bad_data_root_is_one_line_error(tmp_path, capsys):
    from cagereid.cli import main

    rc = main(["train", "--dataset", "BIWI", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
               "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and "\n" not in err and "nowhere" in err


def test_cli_bad_config_key_is_one_line_error(tmp_path, capsys):
    from cagereid.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 1\nlearning_rate: 3\n")
    rc = main(["train", "--config", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "learning_rate" in err and "bad.yaml" in err


def test_ucalgary_protocol_windows(ucalgary_root):
    data = load_run_data("UCALGARY", ucalgary_root, 6)
    people = set(np.unique(data.rn_train.pids).tolist())
    assert len(people) == 13 and 10 not in people  # sub10 duplicates sub4 and is dropped by the reader
    assert set(np.unique(data.rn_train.recording % 100).tolist()) == {1}
    assert set(np.unique(data.probes["same"].recording % 100).tolist()) == {2}
    assert set(np.unique(data.probes["cross"].recording % 100).tolist()) <= {3, 4, 5, 6}
    assert data.encoder_train.n > 5 * data.rn_train.n  # encoder: all runs (labels unused)
    assert load_run_data("UCALGARY", ucalgary_root, 6, encoder_runs="run1").encoder_train.n == data.rn_train.n


def test_training_batches_never_pair_with_held_out_windows():
    from cages.features import FeatureConfig
    from offline.training.encoder import EncoderData, batches as epoch_batches

    n = 60
    ws = WindowSet(np.random.default_rng(0).normal(size=(n, 6, 20, 3)), np.zeros(n), recording=np.repeat([1, 2], 30),
                   start=np.tile(np.arange(30), 2))
    cfg = TrainConfig(hidden=16, batch_size=16).resolved()
    data = EncoderData(ws, cfg, cfg.encoder_config(20), FeatureConfig(), "cpu", 0)
    pool = np.r_[np.arange(0, 20), np.arange(30, 50)]
    batches = epoch_batches(data, pool, cfg, np.random.default_rng(0))
    assert sum(len(b) // 2 for b in batches) == len(pool)  # every training window is an anchor once per epoch
    for b in batches:
        assert set(b.tolist()) <= set(pool.tolist())
        half = len(b) // 2
        assert (ws.recording[b[:half]] == ws.recording[b[half:]]).all()


def test_bench_train_times_the_real_step_next_to_the_reference(capsys):
    """`cagereid bench train` runs the library's training step (not a copy of it) and the plain PyTorch
    reference in the same run; a smoke test of the command (no timing is asserted)."""
    from cagereid.cli import main

    assert main(["bench", "train", "--batch-size", "8", "--steps", "1", "--runs", "1", "--reference",
                 "--latency-batches", "2", "--repeats", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "real step" in out and "Adam" in out and "reference" in out and "ratio" in out


def test_facing_is_stored_in_the_model_and_makes_its_embedding_blind_to_walking_direction(synth_biwi, tmp_path):
    """`facing: true` (the live encoder's setting): the hip/shoulder joints are stored with the model, and the same
    walk turned about the vertical axis (a walk past the camera the other way) embeds to the same vector."""
    root, splits = synth_biwi
    cfg = TrainConfig(dataset="BIWI", f=6, epochs=1, rn_epochs=1, facing=True, **TINY)
    run_training(cfg, root, tmp_path / "r", progress=False)
    meta = json.loads((tmp_path / "r" / "encoder.json").read_text())
    assert meta["features"]["facing"] == [12, 16, 4, 8] and meta["train_config"]["facing"] is True
    ext = CageExtractor.from_checkpoint(tmp_path / "r", device="cpu")
    w = splits["Walking"].windows[:4].astype(np.float32)
    turned = w * np.array([-1.0, 1.0, -1.0], np.float32)  # rotated by pi about y
    np.testing.assert_allclose(ext.embed(turned), ext.embed(w), atol=1e-4)
    plain = CageExtractor.from_checkpoint(tmp_path / "r", device="cpu")
    plain.features.facing = []
    assert np.abs(plain.embed(turned) - plain.embed(w)).max() > 1e-3
