"""`cagereid synth`: format-faithful synthetic datasets that read back bit-for-bit, and `--check`."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from cagereid import cli
from offline.datasets.cage_layout import read_cage_dataset, split_files
from offline.errors import OfflineError
from offline.synth import synth_dataset

TINY = dict(identities=3, seed=1, rounds=2)
CASES = ([(ds, f, None) for ds in ("BIWI", "IAS", "KGBD", "KS20") for f in (4, 6, 8, 10)]
         + [("KS20", 6, 4), ("CASIA_B", 20, 5), ("CASIA_B_match", 50, None)])


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("windows", "pids", "recording", "offset", "start"))


@pytest.mark.parametrize("dataset,f,view", CASES)
def test_synth_reads_back_bit_for_bit(tmp_path, dataset, f, view):
    frames = 2 * f + 4
    splits = synth_dataset(tmp_path, dataset, f, view=view, frames=frames, **TINY)
    back = read_cage_dataset(tmp_path, dataset, f, view=view)
    assert list(back) == list(splits)
    for split, ws in splits.items():
        assert _same(back[split], ws), split
        assert back[split].n > 0 and back[split].windows.dtype == np.float64
        assert np.isfinite(back[split].windows).all()
    assert (split_files(tmp_path, dataset, f, "train", view).folder.parent / "synth.json").is_file()


def test_window_order_is_offset_major_person_walk_time(tmp_path):
    ws = synth_dataset(tmp_path, "BIWI", 6, identities=3, seed=0, frames=40, rounds=3)["train"]
    assert ws.offset.tolist() == sorted(ws.offset.tolist())  # offset-major
    assert set(ws.offset.tolist()) == {0, 1, 2}
    for s in range(3):
        block = np.flatnonzero(ws.offset == s)
        assert ws.pids[block].tolist() == sorted(ws.pids[block].tolist())  # person by person
        assert ((ws.start[block] - s) % 6 == 0).all()  # non-overlapping grid shifted by s
        for rec in np.unique(ws.recording[block]):
            starts = ws.start[block][ws.recording[block] == rec]
            assert starts.tolist() == list(range(s, s + 6 * len(starts), 6))  # temporal order, stride f
    # adjacent windows of one walk continue each other (the contrastive positives of the original)
    n = 0
    assert ws.recording[n] == ws.recording[n + 1] and ws.start[n + 1] == ws.start[n] + 6


def test_split_structure(tmp_path):
    biwi = synth_dataset(tmp_path, "BIWI", 6, identities=4, seed=0, frames=30, rounds=1)
    people = set(biwi["train"].pids.tolist())
    assert people == set(biwi["Walking"].pids.tolist()) == set(biwi["Still"].pids.tolist())
    assert people <= set(range(50)) and len(people) == 4
    kgbd = synth_dataset(tmp_path, "KGBD", 6, identities=4, seed=0, frames=30, rounds=1)
    test_recs = {int(p): set(kgbd["test"].recording[kgbd["test"].pids == p].tolist()) for p in kgbd["test"].pids}
    assert all(len(r) == 1 for r in test_recs.values()) and len(test_recs) == 4
    assert not set(kgbd["test"].recording.tolist()) & set(kgbd["train"].recording.tolist())
    ks = synth_dataset(tmp_path, "KS20", 6, identities=2, seed=0, view=3, frames=30, rounds=1)
    assert set(((ks["test"].recording % 1000) // 10).tolist()) == {3}
    assert 3 not in set(((ks["train"].recording % 1000) // 10).tolist())
    cme = synth_dataset(tmp_path, "CASIA_B_match", 50, identities=4, seed=0, frames=60, rounds=3)
    assert not set(cme["train"].pids.tolist()) & set(cme["nm"].pids.tolist())
    assert np.array_equal(cme["test_all"].windows,
                          np.concatenate([cme[c].windows for c in ("nm", "bg", "cl")]))
    casia = synth_dataset(tmp_path, "CASIA_B", 20, identities=2, seed=0, view=5, frames=40, rounds=1)
    x, y = casia["train"].windows[..., 0], casia["train"].windows[..., 1]
    assert casia["train"].J == 14 and 0 < x.min() and x.max() < 320 and 0 < y.min() and y.max() < 240


def test_deterministic_given_seed(tmp_path):
    def digest(root):
        return sorted((p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
                      for p in root.rglob("*") if p.is_file())

    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        synth_dataset(tmp_path / name, "IAS", 4, identities=2, seed=seed, frames=20, rounds=2)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_identities_are_stable_across_walks(tmp_path):
    """The same person walks alike in train and test: a nearest-neighbour on centred windows beats chance."""
    from cages.windows import centre

    sp = synth_dataset(tmp_path, "BIWI", 10, identities=6, seed=0, rounds=1)
    g = centre(sp["train"].windows, 0).reshape(sp["train"].n, -1)
    p = centre(sp["Walking"].windows, 0).reshape(sp["Walking"].n, -1)
    d = ((p[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    rank1 = (sp["train"].pids[d.argmin(1)] == sp["Walking"].pids).mean()
    assert rank1 > 2 / 6  # chance is 1/6


def test_bad_arguments(tmp_path):
    with pytest.raises(Exception, match="view 0..10"):
        synth_dataset(tmp_path, "CASIA_B", 20, identities=2)
    with pytest.raises(OfflineError, match="shorter than one window"):
        synth_dataset(tmp_path, "BIWI", 10, identities=2, frames=5)
    with pytest.raises(OfflineError, match="identities"):
        synth_dataset(tmp_path, "CASIA_B_match", 50, identities=1)


def test_shared_fixture(synth_biwi):
    root, splits = synth_biwi
    back = read_cage_dataset(root, "BIWI", 6)
    assert all(_same(back[s], splits[s]) for s in splits)


# --- the command line -----------------------------------------------------------------------------

def test_cli_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "Datasets"
    rc = cli.main(["synth", "--dataset", "biwi", "--length", "6", "--identities", "3", "--out", str(out),
                   "--rounds", "2", "--frames", "24"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Walking" in text and "Still" in text
    assert cli.main(["synth", "--check", str(out)]) == 0
    assert "validated" in capsys.readouterr().out
    # the same summary for scripts: JSON on stdout only
    assert cli.main(["synth", "--check", str(out), "--json"]) == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert doc["root"] == str(out) and doc["warnings"] == [] and cap.err == ""
    splits = {r["split"]: r for r in doc["datasets"]}
    assert set(splits) >= {"train", "Walking", "Still"}
    assert all(r["dataset"] == "BIWI" and r["f"] == 6 and r["J"] == 20 and r["people"] == 3 and r["windows"] > 0
               for r in doc["datasets"])
    assert cli.main(["synth", "--dataset", "biwi", "--out", str(out), "--json"]) == 2  # --json goes with --check


@pytest.mark.parametrize("how", ["delete", "nan"])
def test_cli_check_fails_with_one_line_error(tmp_path, capsys, how):
    out = tmp_path / "Datasets"
    synth_dataset(out, "KS20", 6, identities=2, seed=0, frames=20, rounds=1)
    bad = split_files(out, "KS20", 6, "test").source("z")
    if how == "delete":
        bad.unlink()
    else:
        a = np.load(bad, allow_pickle=False)
        a[0, 0] = np.nan
        np.save(bad, a)
    capsys.readouterr()
    assert cli.main(["synth", "--check", str(out), "--dataset", "KS20", "--length", "6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and bad.name in err[0]


def test_cli_user_errors_exit_2(tmp_path, capsys):
    assert cli.main(["synth", "--dataset", "CASIA_B", "--out", str(tmp_path)]) == 2
    assert cli.main(["synth", "--check", str(tmp_path)]) == 2
    assert cli.main(["synth", "--dataset", "BIWI"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert not list(tmp_path.iterdir())


def test_monocular_synth_is_hip_centred_complete_and_differs_from_the_clean_set(tmp_path):
    """`--monocular`: live-domain training data (degraded like MediaPipe, filled like live windows)."""
    clean = synth_dataset(None, "BIWI", 6, frames=30, **TINY)
    mono = synth_dataset(tmp_path, "BIWI", 6, frames=30, monocular=True, **TINY)
    w = mono["train"].windows  # (N, f, 20, 3)
    assert w.shape == clean["train"].windows.shape and np.isfinite(w).all()
    assert np.abs(w[..., [12, 16], :].mean(-2)).max() < 0.1  # hips centred on the origin (plus noise)
    assert not np.allclose(w, clean["train"].windows)
    assert _same(read_cage_dataset(tmp_path, "BIWI", 6)["train"], mono["train"])
    with pytest.raises(OfflineError, match="monocular"):
        synth_dataset(None, "CASIA_B", 20, view=5, monocular=True, **TINY)
