"""`cagereid evaluate` on tiny synthetic datasets written in every original layout (format coverage),
plus the sequence-level and exclusion rules of offline.evaluate."""
import json
from pathlib import Path

import numpy as np
import pytest

from cagereid import cli
from offline.datasets.base import WindowSet
from offline.evaluate import Method, evaluate_pair, knn_class_scores, sequence_groups

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ucalgary_gait"


def synth(dataset, split, J, f=4, people=(1, 2, 3), recordings=2, windows=3, seed=0, layout=""):
    """Walkers with a stable per-person body (so every method can tell them apart) and per-walk variation."""
    rng = np.random.default_rng(seed)
    out, pids, rec, start = [], [], [], []
    for p in people:
        body = np.random.default_rng(1000 + p).normal(size=(J, 3)) * 0.3
        for r in range(recordings):
            phase = rng.uniform(0, 6)
            for k in range(windows):
                t = np.arange(f)[:, None, None] + k * f
                w = body[None] + 0.03 * np.sin(0.7 * t + phase) + rng.normal(scale=0.01, size=(f, J, 3))
                out.append(w + np.array([rng.uniform(-1, 1), 0.0, rng.uniform(2, 4)]))
                pids.append(p)
                rec.append(p * 100 + r + (0 if split in ("train", "gallery") else 50))
                start.append(k * f)
    n = len(out)
    return WindowSet(np.array(out), np.array(pids), dataset, split, layout, np.array(rec), np.zeros(n), np.array(start))


CAGE_CASES = {  # dataset -> (J, splits)
    "BIWI": (20, ("train", "Walking", "Still")),
    "IAS": (20, ("train", "A", "B")),
    "KGBD": (20, ("train", "test")),
    "KS20": (25, ("train", "test")),
    "CASIA_B_match": (14, ("train", "nm", "bg", "cl")),
}
P2_CASES = {
    "BIWI": (20, ("train", "Walking", "Still")),
    "IAS": (20, ("train", "A", "B")),
    "KGBD": (20, ("train", "gallery", "probe")),
    "KS20": (25, ("train", "gallery", "probe")),
}


def _evaluate(tmp_path, dataset, root, *extra, length=4, methods="raw-kNN,D13-kNN"):
    out = tmp_path / "out"
    rc = cli.main(["evaluate", "--dataset", dataset, "--data-root", str(root), "--length", str(length),
                   "--methods", methods, "--out", str(out), *extra])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    return out, report


@pytest.mark.parametrize("dataset", sorted(CAGE_CASES))
def test_cage_layout_every_split(tmp_path, dataset):
    from offline.datasets.cage_layout import write_cage_dataset
    from offline.protocols import CAGE_PROTOCOLS

    J, splits = CAGE_CASES[dataset]
    write_cage_dataset(tmp_path / "Datasets", dataset, 4,
                       {s: synth(dataset, s, J, seed=i) for i, s in enumerate(splits)})
    # CASIA_B_match has 5 pairs: one baseline keeps the test quick (the other is covered elsewhere)
    out, report = _evaluate(tmp_path, dataset, tmp_path / "Datasets",
                            methods="raw-kNN" if dataset == "CASIA_B_match" else "raw-kNN,D13-kNN")
    names = {r["split"] for r in report["rows"]}
    assert names == {p.name for p in CAGE_PROTOCOLS[dataset]}
    assert {(r["protocol"], r["level"]) for r in report["rows"]} == {("P1", "window"), ("P1", "sequence"),
                                                                    ("P2", "window"), ("P2", "sequence")}
    for r in report["rows"]:
        assert r["rank1"] == 1.0, r  # the synthetic people are easy: every method must get them all
    for png in report["plots"]:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| raw-kNN |" in (out / "report.md").read_text()


def test_casia_b_cve_every_view(tmp_path):
    from offline.datasets.cage_layout import write_cage_dataset

    for v in range(11):
        write_cage_dataset(tmp_path / "Datasets", "CASIA_B", 4,
                           {s: synth("CASIA_B", s, 14, seed=v + i) for i, s in enumerate(("train", "test"))}, view=v)
    _, report = _evaluate(tmp_path, "CASIA_B", tmp_path / "Datasets", "--protocol", "p2", "--distance", "euclidean",
                          methods="D13-kNN")
    assert {r["split"] for r in report["rows"]} == {f"CASIA_B-CVE-{18 * v}deg" for v in range(11)}


@pytest.mark.parametrize("dataset", sorted(P2_CASES))
def test_p2_layout_every_split(tmp_path, dataset):
    from offline.datasets.p2_layout import write_p2_dataset
    from offline.protocols import P2_PROTOCOLS

    J, splits = P2_CASES[dataset]
    write_p2_dataset(tmp_path / "p2", dataset, 4, {s: synth(dataset, s, J, seed=i) for i, s in enumerate(splits)})
    _, report = _evaluate(tmp_path, dataset, tmp_path / "p2", "--protocol", "p2")
    assert {r["split"] for r in report["rows"]} == {p.name for p in P2_PROTOCOLS[dataset]}
    assert all(r["protocol"] == "P2" for r in report["rows"])


def test_missing_dataset_is_a_one_line_error(tmp_path, capsys):
    rc = cli.main(["evaluate", "--dataset", "BIWI", "--data-root", str(tmp_path), "--methods", "raw-kNN",
                   "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "error:" in capsys.readouterr().err


def test_sequence_level_aggregates_each_walk():
    g = synth("X", "gallery", 5)
    p = synth("X", "probe", 5, seed=3)
    group, gp, gr = sequence_groups(p)
    assert len(gp) == 3 * 2 and (np.bincount(group) == 3).all()
    m = Method("identity", lambda w: w.reshape(len(w), -1))
    rows = evaluate_pair(m, g, p, "toy", distances=("euclidean",))
    seq = next(r for r in rows if r["protocol"] == "P2" and r["level"] == "sequence")
    assert seq["n_probes"] == 6  # 3 people x 2 walks
    p1 = next(r for r in rows if r["protocol"] == "P1" and r["level"] == "window")
    assert p1["n_probes"] == p.n and np.asarray(p1["confusion"]).sum() == p.n


def test_same_set_matching_excludes_own_walk():
    # probe set == gallery set (CASIA-B nm-nm): a window must not be matched to its own walk
    ws = synth("X", "nm", 5, recordings=2)
    m = Method("centred", lambda w: (w - w[:, :, :1]).mean(1).reshape(len(w), -1))
    rows = evaluate_pair(m, ws, ws, "nm.nm", protocols=("p2",), distances=("euclidean",), same_set=True)
    win = rows[0]
    assert win["n_probes"] == ws.n and win["rank1"] == 1.0  # the other walk of the same person is found
    solo = ws.subset(np.flatnonzero(ws.recording % 2 == 0))  # one walk per person: nothing left to match
    rows = evaluate_pair(m, solo, solo, "nm.nm", protocols=("p2",), distances=("euclidean",), same_set=True)
    assert rows[0]["n_probes"] == 0 and rows[0]["n_unmatched"] == solo.n


def test_knn_class_scores():
    g = np.array([[0.0], [1.0], [5.0]])
    scores, classes = knn_class_scores(np.array([[0.9]]), g, np.array([7, 7, 9]))
    assert classes.tolist() == [7, 9] and scores == pytest.approx(np.array([[-0.1, -4.1]]))


def test_report_command_compares_runs(tmp_path, capsys):
    from offline.datasets.p2_layout import write_p2_dataset

    write_p2_dataset(tmp_path / "p2", "KGBD", 4, {s: synth("KGBD", s, 20, seed=i)
                                                  for i, s in enumerate(("train", "gallery", "probe"))})
    out, _ = _evaluate(tmp_path, "KGBD", tmp_path / "p2")
    capsys.readouterr()
    assert cli.main(["report", str(out), str(out), "--level", "window", "--out", str(tmp_path / "cmp.md")]) == 0
    text = capsys.readouterr().out
    assert "| out | raw-kNN | 100.0 / 100.0 |" in text and (tmp_path / "cmp.md").is_file()


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real UCalgary data not found at {DATA}")
def test_ucalgary_baselines_real_data(tmp_path):
    _, report = _evaluate(tmp_path, "UCALGARY", DATA, "--protocol", "p2", "--distance", "euclidean",
                          length=6)
    row = next(r for r in report["rows"] if r["method"] == "raw-kNN" and r["split"] == "UCALGARY-same"
               and r["level"] == "window")
    # sub10 (copy of sub4) dropped, 20 non-overlapping windows per walk; tracking cleaned: sub3/Run2 loses its
    # first 6 frames (a bystander: 19 windows) and sub7/Run1 (the bystander all along) is no gallery walk, so
    # sub7's 20 windows cannot be matched
    assert (row["n_probes"], row["n_unmatched"]) == (11 * 20 + 19, 20)
    assert "sub7/Run1: dropped" in report["meta"]["tracking cleaned"]
    assert 0.7 < row["rank1"] < 0.95
    _, raw = _evaluate(tmp_path / "raw", "UCALGARY", DATA, "--protocol", "p2", "--distance", "euclidean",
                       "--no-clean-tracking", "--walk-pooling", "mean", "--gallery-smoothing", "1", length=6)
    row = next(r for r in raw["rows"] if r["method"] == "raw-kNN" and r["split"] == "UCALGARY-same"
               and r["level"] == "window")
    assert (row["n_probes"], row["n_unmatched"]) == (13 * 20, 0) and raw["meta"]["tracking cleaned"] == "off"
    assert round(row["rank1"], 3) == 0.808  # the plain protocol of README's earlier table
    # a subset of the people (choose settings on some, check on the others)
    _, half = _evaluate(tmp_path / "half", "UCALGARY", DATA, "--protocol", "p2", "--distance", "euclidean",
                        "--people", "1,3,5", length=6)
    row = next(r for r in half["rows"] if r["method"] == "raw-kNN" and r["split"] == "UCALGARY-same"
               and r["level"] == "window")
    assert row["n_probes"] == 2 * 20 + 19 and half["meta"]["people"] == "1, 3, 5"  # sub3/Run2 cleaned
    assert half["meta"]["gallery"].startswith("Run1, 60 windows")  # the gallery is restricted too


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real UCalgary data not found at {DATA}")
def test_people_subset_needs_p2_and_known_subjects(tmp_path, capsys):
    for extra in (["--people", "1,3"], ["--protocol", "p2", "--people", "1,99"], ["--protocol", "p2", "--people", ","]):
        rc = cli.main(["evaluate", "--dataset", "UCALGARY", "--data-root", str(DATA), "--length", "6",
                       "--methods", "raw-kNN", "--out", str(tmp_path / "o"), *extra])
        assert rc == 2 and "--people" in capsys.readouterr().err


def test_train_and_evaluate_cages_tiny(tmp_path):
    """--train: encoder + RN per seed (tiny width/epochs), CAGEs reported next to the baselines, mean ± std."""
    from offline.datasets.cage_layout import write_cage_dataset

    write_cage_dataset(tmp_path / "Datasets", "KGBD", 4,
                       {s: synth("KGBD", s, 20, seed=i) for i, s in enumerate(("train", "test"))})
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("hidden: 8\nepochs: 1\nrn_epochs: 2\nbatch_size: 16\n")
    out = tmp_path / "out"
    rc = cli.main(["evaluate", "--dataset", "KGBD", "--data-root", str(tmp_path / "Datasets"), "--length", "4",
                   "--train", "--seeds", "2", "--config", str(cfg), "--device", "cpu", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    cage = [r for r in report["rows"] if r["method"] == "CAGEs"]
    assert {r["seed"] for r in cage} == {0, 1}
    assert {r["distance"] for r in cage if r["protocol"] == "P1"} == {"RN"}
    assert (out / "cage_KGBD_f4_seed1" / "rn.json").is_file()
    s = next(x for x in report["summary"] if x["method"] == "CAGEs" and x["protocol"] == "P2")
    assert s["n_seeds"] == 2 and len(s["rank1"]["values"]) == 2
    assert "CAGEs" in (out / "report.md").read_text()
    # a finished run is reused, and --RN_dir evaluates it directly
    rc = cli.main(["evaluate", "--dataset", "KGBD", "--data-root", str(tmp_path / "Datasets"), "--length", "4",
                   "--RN_dir", "cage_KGBD_f4_seed0", "--models-root", str(out), "--protocol", "p1",
                   "--methods", "cage", "--out", str(tmp_path / "o2")])
    assert rc == 0
    rows = json.loads((tmp_path / "o2" / "report.json").read_text())["rows"]
    assert rows and {r["method"] for r in rows} == {"CAGEs"} and {r["protocol"] for r in rows} == {"P1"}
    # the retrieval readout can be overridden at evaluation time (improved runs read the heads by default)
    from offline.evaluate import cage_method

    w = synth("KGBD", "test", 20).windows[:5]
    run = out / "cage_KGBD_f4_seed0"
    head, ap = (cage_method(run, readout=r).embed(w) for r in ("head", "ap"))
    assert head.shape[1] != ap.shape[1] and np.allclose(head, cage_method(run).embed(w))
    nob = cage_method(run, bone_weight=0.0)
    assert nob.embed(w).shape[1] == head.shape[1] - 19  # kinect_v1's 19 bones left out of the embedding
    assert nob.scores(w)[0].shape == cage_method(run).scores(w)[0].shape  # the RN keeps what it was trained on
    from offline.errors import OfflineError

    with pytest.raises(OfflineError):
        cage_method(run, readout="mean")
    # the override is reported, and a finished run is only reused for the settings it was trained with
    rc = cli.main(["evaluate", "--dataset", "KGBD", "--data-root", str(tmp_path / "Datasets"), "--length", "4",
                   "--RN_dir", "cage_KGBD_f4_seed0", "--models-root", str(out), "--protocol", "p2",
                   "--methods", "cage", "--readout", "ap", "--out", str(tmp_path / "o3")])
    assert rc == 0
    meta = json.loads((tmp_path / "o3" / "report.json").read_text())["meta"]
    assert meta["embedding override"].startswith("readout ap")
    rc = cli.main(["evaluate", "--dataset", "KGBD", "--data-root", str(tmp_path / "Datasets"), "--length", "4",
                   "--train", "--seeds", "1", "--config", str(cfg), "--epochs", "2", "--device", "cpu",
                   "--out", str(out)])
    assert rc == 2  # the run in `out` was trained for 1 epoch


def test_bad_config_key_is_a_user_error(tmp_path, capsys):
    from offline.datasets.cage_layout import write_cage_dataset

    write_cage_dataset(tmp_path / "D", "KGBD", 4, {s: synth("KGBD", s, 20, seed=i) for i, s in enumerate(("train", "test"))})
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("hiden: 8\n")
    rc = cli.main(["evaluate", "--dataset", "KGBD", "--data-root", str(tmp_path / "D"), "--length", "4", "--train",
                   "--config", str(cfg), "--out", str(tmp_path / "o")])
    assert rc == 2 and "hiden" in capsys.readouterr().err


def test_best_model_picks_matching_run(tmp_path):
    import os

    from offline.errors import OfflineError
    from offline.evaluate import find_run

    def run(name, ds, f, model, mtime):
        d = tmp_path / name
        d.mkdir()
        (d / "encoder.json").write_text(json.dumps({"dataset": ds, "f": f, "train_config": {"model": model}}))
        (d / "encoder.pt").write_bytes(b"")
        os.utime(d / "encoder.pt", (mtime, mtime))

    run("a", "BIWI", 6, "rev_rec", 100)
    run("b", "BIWI", 6, "rev_rec", 200)
    run("c", "BIWI", 6, "rev_rec_plus", 300)
    run("d", "KS20", 6, "rev_rec", 400)
    assert find_run(tmp_path, "BIWI", 6, "rev_rec").name == "b"
    assert find_run(tmp_path, "BIWI", 6, "rev_rec_plus").name == "c"
    with pytest.raises(OfflineError):
        find_run(tmp_path, "BIWI", 8, "rev_rec")


def test_walk_pooling_and_gallery_smoothing_rows():
    from offline.evaluate import PLAIN, Retrieval

    g = synth("X", "gallery", 5)
    p = synth("X", "probe", 5, seed=3)
    m = Method("centred", lambda w: (w - w[:, :, :1]).mean(1).reshape(len(w), -1))
    plain = evaluate_pair(m, g, p, "toy", protocols=("p2",), distances=("euclidean",), retrieval=PLAIN)
    walk = evaluate_pair(m, g, p, "toy", protocols=("p2",), distances=("euclidean",),
                         retrieval=Retrieval("nearest", 0.0))
    rer = evaluate_pair(m, g, p, "toy", protocols=("p2",), distances=("euclidean",),
                        retrieval=Retrieval("nearest", 0.7, rerank=True))
    for rows in (plain, walk, rer):
        assert [(r["level"], r["n_probes"]) for r in rows] == [("window", p.n), ("sequence", 6)]
        assert all(r["rank1"] == 1.0 for r in rows)  # easy people: every retrieval finds them
    # smoothing to the walk means (A = 0) ranks whole walks: every gallery window of the person comes first
    assert walk[0]["mAP"] == 1.0
    with pytest.raises(Exception, match="gallery smoothing"):
        Retrieval("nearest", 2.0)


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real UCalgary data not found at {DATA}")
def test_ucalgary_subjects_fold_restricts_everything(tmp_path, capsys):
    _, rep = _evaluate(tmp_path, "UCALGARY", DATA, "--protocol", "p2", "--distance", "euclidean",
                       "--subjects", "2,4,6", "--walk-pooling", "mean", "--gallery-smoothing", "1", length=6)
    row = next(r for r in rep["rows"] if r["method"] == "raw-kNN" and r["split"] == "UCALGARY-cross"
               and r["level"] == "sequence")
    assert row["n_probes"] == 3 * 4 - 1  # runs 3-6 of three people; sub6/Run6 is a duplicate of Run5
    assert rep["meta"]["people"] == 3 and rep["meta"]["P2 retrieval"].startswith("walk pooling mean")
    assert rep["meta"]["gallery"].startswith("Run1, 60 windows")
    rc = cli.main(["evaluate", "--dataset", "UCALGARY", "--data-root", str(DATA), "--methods", "raw-kNN",
                   "--subjects", "2,99", "--out", str(tmp_path / "o")])
    assert rc == 2 and "--subjects" in capsys.readouterr().err


def test_ensemble_method_averages_member_distances():
    from offline.evaluate import ensemble_method
    from offline.metrics import pairwise_distance

    rng = np.random.default_rng(0)
    w = rng.normal(size=(7, 4, 5, 3))
    proj = [rng.normal(size=(60, 6)) for _ in range(3)]
    members = [Method(f"m{i}", (lambda w, P=P: w.reshape(len(w), -1) @ P),
                      (lambda w, i=i: (np.full((len(w), 2), float(i)), np.array([1, 2]))), seed=i)
               for i, P in enumerate(proj)]
    ens = ensemble_method(members, "ens", seed=0)
    assert ens.name == "ens" and ens.seed == 0 and ens.embed(w).shape == (7, 18)
    d2 = pairwise_distance(ens.embed(w), ens.embed(w[:3]), "euclidean") ** 2
    want = np.mean([pairwise_distance(m.embed(w), m.embed(w[:3]), "euclidean") ** 2 for m in members], axis=0)
    assert np.allclose(d2, want)  # squared distance = mean of the members' squared distances
    s, c = ens.scores(w)
    assert np.allclose(s, 1.0) and c.tolist() == [1, 2]  # RN scores averaged
    one = ensemble_method(members[:1], "solo", seed=5)
    assert one.name == "solo" and one.seed == 5 and np.allclose(one.embed(w), members[0].embed(w))
    bad = Method("m9", members[0].embed, lambda w: (np.zeros((len(w), 2)), np.array([1, 3])))
    with pytest.raises(Exception, match="different classes"):
        ensemble_method([members[0], bad], "x").scores(w)
    with pytest.raises(Exception, match="at least one"):
        ensemble_method([], "x")
    # a member without an RN (the pretrained encoder kept beside the fine-tuned one) embeds but does not score
    kept = ensemble_method([members[2], Method("pre", members[0].embed, None)], "kept", weights=[0.25, 0.75])
    assert kept.embed(w).shape == (7, 12) and np.allclose(kept.scores(w)[0], 2.0)
    d2 = pairwise_distance(kept.embed(w), kept.embed(w[:3]), "euclidean") ** 2
    want = sum(a * pairwise_distance(m.embed(w), m.embed(w[:3]), "euclidean") ** 2
               for a, m in ((0.25, members[2]), (0.75, members[0])))
    assert np.allclose(d2, want)  # weighted mean of the members' squared distances
    for bad_w in ([0.5, 0.6], [1.0], [-0.5, 1.5]):
        with pytest.raises(Exception, match="weights"):
            ensemble_method([members[2], members[0]], "x", weights=bad_w)
    assert ensemble_method([Method("a", members[0].embed, None), Method("b", members[1].embed, None)], "x").scores is None


def test_ensemble_flag_is_ucalgary_only_and_positive(tmp_path, capsys):
    rc = cli.main(["evaluate", "--dataset", "KGBD", "--data-root", str(tmp_path), "--ensemble", "2",
                   "--methods", "raw-kNN", "--out", str(tmp_path / "o")])
    assert rc == 2 and "--ensemble" in capsys.readouterr().err
    rc = cli.main(["evaluate", "--dataset", "KGBD", "--data-root", str(tmp_path), "--init-weight", "0.5",
                   "--methods", "raw-kNN", "--out", str(tmp_path / "o")])
    assert rc == 2 and "--init-weight" in capsys.readouterr().err
    rc = cli.main(["evaluate", "--dataset", "UCALGARY", "--data-root", str(tmp_path), "--init-weight", "1.5",
                   "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "--init-weight" in err and len(err.strip().splitlines()) == 1
    rc = cli.main(["evaluate", "--dataset", "UCALGARY", "--ensemble", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "--ensemble" in err and len(err.strip().splitlines()) == 1


def test_synthetic_walker_windows():
    from offline.synth import walker_windows

    ws = walker_windows(6, "ucalgary18", identities=3, walks=2, frames=20, stride=2, seed=1)
    assert ws.windows.shape == (3 * 2 * 8, 6, 18, 3) and ws.layout == "ucalgary18"
    assert len(np.unique(ws.recording)) == 6 and len(np.unique(ws.pids)) == 3
    assert np.isfinite(ws.windows).all()
    again = walker_windows(6, "ucalgary18", identities=3, walks=2, frames=20, stride=2, seed=1)
    assert np.array_equal(ws.windows, again.windows)  # deterministic in the seed
    assert not np.allclose(ws.windows, walker_windows(6, "ucalgary18", 3, 2, 20, 2, seed=2).windows)
    with pytest.raises(Exception, match="frames"):
        walker_windows(6, "ucalgary18", identities=3, walks=2, frames=4)


def test_synthetic_walker_windows_limping_walks_and_person_positives():
    """The last ``limp_walks`` walks of every synthetic person limp; with ``positives="person"`` all of a person's
    walks share one recording id (so the encoder's positives cross walks), otherwise every walk is its own."""
    from offline.synth import walker_windows

    base = walker_windows(6, "ucalgary18", identities=3, walks=3, frames=20, stride=2, seed=1)
    ws = walker_windows(6, "ucalgary18", identities=3, walks=3, frames=20, stride=2, seed=1, limp_walks=2,
                        positives="person")
    per_walk = 8  # (20 - 6) / 2 + 1 windows
    first = np.concatenate([np.arange(p * 3 * per_walk, p * 3 * per_walk + per_walk) for p in range(3)])
    np.testing.assert_array_equal(ws.windows[first], base.windows[first])  # walk 0 of everyone: not limping
    assert not np.allclose(ws.windows, base.windows)
    assert len(np.unique(ws.recording)) == 3 and len(np.unique(base.recording)) == 9
    assert ws.meta["limp_walks"] == 2 and ws.meta["positives"] == "person"
    again = walker_windows(6, "ucalgary18", 3, 3, 20, 2, seed=1, limp_walks=2, positives="person")
    assert np.array_equal(ws.windows, again.windows)
    for bad in ({"limp_walks": 4}, {"positives": "pid"}):
        with pytest.raises(Exception, match="limp_walks"):
            walker_windows(6, "ucalgary18", 3, 3, 20, 2, seed=1, **bad)


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real UCalgary data not found at {DATA}")
def test_ucalgary_synthetic_pretraining_then_fine_tuning(tmp_path):
    """Every encoder of the harness is fine-tuned from one encoder pretrained on synthetic walkers (improved mode);
    runs are only reused for the same starting weights; faithful mode trains from scratch as before."""
    from offline.errors import OfflineError
    from offline.evaluate import SynthPretrain, run_ucalgary

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("hidden: 8\nepochs: 1\nrn_epochs: 1\n")
    spec = SynthPretrain(identities=3, walks=2, frames=30, stride=3)
    kw = dict(methods=("cage",), protocols=("p2",), distances=("euclidean",), encoder_data=("run1",),
              device="cpu", config=str(cfg), subjects=(2, 4), say=lambda *a: None, rerank=False)
    rows, meta = run_ucalgary(DATA, 6, tmp_path / "o", pretrain=spec, **kw)
    pre = tmp_path / "o" / "pretrain_synthetic_f6"
    assert (pre / "encoder.pt").is_file() and str(pre) in meta["synthetic pretraining"]
    stored = json.loads((pre / "encoder.json").read_text())
    assert "3 people x 2 walks x 30 frames" in stored["command"] and stored["train_windows"] < 3 * 2 * 9
    run = json.loads((tmp_path / "o" / "cage_run1_s2-4_seed0" / "encoder.json").read_text())
    assert run["command"].endswith(f"encoder init {pre}")
    assert {r["method"] for r in rows} == {"CAGEs (Run1 encoder)"}
    # by default the pretrained encoder embeds beside the fine-tuned one (its limp invariance is kept)
    assert str(pre) in meta["encoder kept"]
    alone, meta_alone = run_ucalgary(DATA, 6, tmp_path / "o", pretrain=spec, init_weight=0, **kw)
    assert "encoder kept" not in meta_alone
    assert [r["mAP"] for r in rows if r["level"] == "window"] != [r["mAP"] for r in alone if r["level"] == "window"]
    # the finished runs are reused with the same pretraining, refused without it
    run_ucalgary(DATA, 6, tmp_path / "o", pretrain=spec, **kw)
    with pytest.raises(OfflineError, match="encoder init"):
        run_ucalgary(DATA, 6, tmp_path / "o", pretrain=None, **kw)
    with pytest.raises(OfflineError, match="pretrained on other data"):
        run_ucalgary(DATA, 6, tmp_path / "o", pretrain=SynthPretrain(identities=4, walks=2, frames=30), **kw)
    faithful = tmp_path / "faithful.yaml"
    faithful.write_text("mode: faithful\nhidden: 8\nepochs: 1\nrn_epochs: 1\n")
    _, meta = run_ucalgary(DATA, 6, tmp_path / "f", pretrain=spec, **{**kw, "config": str(faithful)})
    assert meta["synthetic pretraining"] == "off (faithful mode)"
    assert not (tmp_path / "f" / "pretrain_synthetic_f6").exists()
    run = json.loads((tmp_path / "f" / "cage_run1_s2-4_seed0" / "encoder.json").read_text())
    assert "encoder init" not in run["command"]


def test_pretrain_and_init_flags(tmp_path, capsys):
    rc = cli.main(["evaluate", "--dataset", "UCALGARY", "--data-root", str(tmp_path), "--init", str(tmp_path),
                   "--pretrain", "synthetic", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "--init" in err and len(err.strip().splitlines()) == 1
    rc = cli.main(["evaluate", "--dataset", "UCALGARY", "--data-root", str(tmp_path), "--init", str(tmp_path / "no"),
                   "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a model folder" in err and len(err.strip().splitlines()) == 1
    rc = cli.main(["evaluate", "--dataset", "KGBD", "--data-root", str(tmp_path), "--pretrain", "none",
                   "--methods", "raw-kNN", "--out", str(tmp_path / "o")])
    assert rc == 2 and "--pretrain" in capsys.readouterr().err


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real UCalgary data not found at {DATA}")
def test_ucalgary_cli_pretrains_by_default(tmp_path, monkeypatch):
    """`cagereid evaluate --dataset UCALGARY` pretrains on synthetic walkers unless --pretrain none (tiny sizes)."""
    from offline import evaluate as E

    monkeypatch.setattr(E, "UCALGARY_PRETRAIN", E.SynthPretrain(identities=3, walks=2, frames=30, stride=3))
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("hidden: 8\nepochs: 1\nrn_epochs: 1\n")
    base = ["evaluate", "--dataset", "UCALGARY", "--data-root", str(DATA), "--subjects", "2,4", "--protocol", "p2",
            "--distance", "euclidean", "--encoder-data", "run1", "--methods", "cage", "--no-rerank", "--config",
            str(cfg), "--device", "cpu", "--quiet"]
    assert cli.main(base + ["--out", str(tmp_path / "on")]) == 0
    meta = json.loads((tmp_path / "on" / "report.json").read_text())["meta"]
    assert meta["synthetic pretraining"].startswith("synthetic walkers: 3 people x 2 walks")
    assert (tmp_path / "on" / "pretrain_synthetic_f6" / "encoder.pt").is_file()
    assert cli.main(base + ["--pretrain", "none", "--out", str(tmp_path / "off")]) == 0
    meta = json.loads((tmp_path / "off" / "report.json").read_text())["meta"]
    assert "synthetic pretraining" not in meta and not (tmp_path / "off" / "pretrain_synthetic_f6").exists()
    assert E.SynthPretrain() == E.SynthPretrain(180, 3, 120, 3, 123)  # the cross-validated default (docs/evaluation.md)
