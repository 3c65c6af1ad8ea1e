"""Plots that explain a decision: the live open-set scores replayed offline, CMC spread over seeds, per-seed
row-normalised confusion matrices, embedding maps and training curves (PNG files, written atomically)."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cagereid import cli
from offline import plots
from offline.datasets.base import WindowSet
from offline.evaluate import embedding_map, open_set_scores
from offline.report import summarize, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def _people(n_people=4, walks=2, per_walk=10, dim=8, spread=0.05, seed=0):
    """Embeddings of well separated people: one centre per person, walks scattered around it."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, dim)) * 3
    emb, pids, rec = [], [], []
    for p in range(n_people):
        for w in range(walks):
            emb.append(centres[p] + rng.normal(scale=spread, size=(per_walk, dim)))
            pids += [p + 1] * per_walk
            rec += [10 * p + w] * per_walk
    emb = np.concatenate(emb)
    ws = WindowSet(np.zeros((len(emb), 2, 1, 3)), np.array(pids), "X", "s", recording=np.array(rec))
    return emb, ws


def _read_png(path):
    import matplotlib.image as mpimg

    assert Path(path).read_bytes()[:8] == PNG
    return mpimg.imread(path)


def test_open_set_scores_separate_people_and_use_the_live_threshold():
    from stream.config import StreamConfig
    from stream.identify import calibrate

    g_emb, gallery = _people(seed=0)
    p_emb, probe = _people(seed=0)
    p_emb = p_emb + np.random.default_rng(5).normal(scale=0.05, size=p_emb.shape)
    os_ = open_set_scores(g_emb, gallery, p_emb, probe, "euclidean")
    g, i = np.array(os_["genuine"]), np.array(os_["impostor"])
    assert len(g) == len(i) == len(p_emb)
    assert g.min() > i.max()  # separated people: every walker is closer to themself than to anyone else
    # the threshold is exactly the one `cagereid live` calibrates on this gallery
    data = SimpleNamespace(names=["a", "b", "c", "d"], embeddings=g_emb, person=gallery.pids - 1,
                           session=gallery.recording)
    assert os_["accept_score"] == pytest.approx(calibrate(data, StreamConfig()))
    assert i.max() < os_["accept_score"] < g.min()
    assert plots.open_set_rates(os_) == {"genuine_accepted": 1.0, "impostor_rejected": 1.0}


def test_open_set_scores_same_set_leaves_out_the_own_walk():
    emb, ws = _people(walks=1)  # one walk each: left out, no genuine score is possible
    os_ = open_set_scores(emb, ws, emb, ws, "cosine", exclude_self=True)
    assert os_["genuine"] == [] and len(os_["impostor"]) == len(emb)
    emb, ws = _people(walks=2)
    os_ = open_set_scores(emb, ws, emb, ws, "cosine", exclude_self=True)
    assert len(os_["genuine"]) == len(emb) and min(os_["genuine"]) > max(os_["impostor"])


def test_score_plot_draws_both_distributions_and_the_threshold(tmp_path):
    os_ = {"genuine": list(np.linspace(-1, 0, 50)), "impostor": list(np.linspace(-4, -2, 50)), "accept_score": -1.5,
           "metric": "euclidean", "reduce": "centroid", "pool_windows": 60}
    img = _read_png(plots.plot_scores(os_, "t", tmp_path / "s.png"))
    rgb = img[..., :3]
    green = (rgb[..., 1] > rgb[..., 0] + 0.15) & (rgb[..., 1] > rgb[..., 2] + 0.1)
    red = (rgb[..., 0] > rgb[..., 1] + 0.3) & (rgb[..., 0] > rgb[..., 2] + 0.3)
    assert green.sum() > 500 and red.sum() > 500  # both histograms are there
    # the impostors (low scores) lie left of the genuine scores on the axis
    assert np.nonzero(red)[1].mean() < np.nonzero(green)[1].mean()
    assert not list(tmp_path.glob(".*"))  # no temp file left behind
    with pytest.raises(Exception, match="no scores"):
        plots.plot_scores({"genuine": [], "impostor": []}, "t", tmp_path / "e.png")


def test_confusion_is_normalised_per_row_and_titled_with_its_seed(tmp_path, monkeypatch):
    assert np.allclose(plots.normalise_rows([[8, 2], [0, 0], [1, 3]]), [[0.8, 0.2], [0, 0], [0.25, 0.75]])
    titles = []
    import matplotlib.axes

    orig = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda self, t, *a, **k: (titles.append(t), orig(self, t, *a, **k))[1])
    row = {"method": "m", "split": "s", "level": "window", "seed": 3, "confusion": [[9, 1], [5, 5]], "classes": [1, 2]}
    _read_png(plots.plot_confusion(row, tmp_path / "c.png"))
    assert "seed 3" in titles[-1] and "Rank-1 70.0%" in titles[-1]


def _rows(seeds=(0, 1)):
    rows = []
    emb, ws = _people()
    for seed in seeds:
        cmc = [0.5 + 0.2 * seed, 0.9, 1.0]
        rows.append({"method": "M", "protocol": "P2", "split": "s", "level": "window", "distance": "euclidean",
                     "seed": seed, "rank1": cmc[0], "cmc": cmc, "n_probes": 10, "n_unmatched": 0,
                     "open_set": open_set_scores(emb, ws, emb, ws, "euclidean", exclude_self=True),
                     "embedding_map": embedding_map(emb, ws.pids)})
        rows.append({"method": "M", "protocol": "P1", "split": "s", "level": "window", "distance": "RN",
                     "seed": seed, "rank1": 0.5, "cmc": cmc, "n_probes": 10, "n_unmatched": 0,
                     "confusion": [[5, 5], [0, 10]], "classes": [1, 2]})
    return rows


def test_report_writes_every_plot_and_the_threshold_table(tmp_path):
    s = next(x for x in summarize(_rows()) if x["protocol"] == "P2")
    assert s["cmc_min"] == [0.5, 0.9, 1.0] and s["cmc_max"] == [0.7, 0.9, 1.0]  # the band over seeds
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text('{"phase": "encoder", "epoch": 1, "loss": 2.0, "val_loss": 2.5}\n'
                                   '{"phase": "encoder", "epoch": 2, "loss": 1.0}\n')
    paths = write_report(tmp_path / "out", _rows(), {"dataset": "X"}, training_runs=[run])
    names = {p.name for p in paths.values()}
    assert {"cmc_P2_s.png", "cmc_P1_s.png", "scores_M_s.png", "embedding_M_s.png", "confusion_M_s_seed0.png",
            "confusion_M_s_seed1.png", "training_run.png"} <= names
    for p in paths.values():
        if p.suffix == ".png":
            _read_png(p)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| M | s |" in md and "| 100.0 | 100.0 |" in md  # accept_score row: all genuine in, all impostors out
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert all("open_set" not in r and "embedding_map" not in r for r in data["rows"])  # plots only


def test_embedding_map_keeps_person_clusters():
    emb, ws = _people(n_people=3, dim=16)
    m = embedding_map(emb, ws.pids)
    xy, pids = np.array(m["xy"]), np.array(m["pids"])
    centres = np.array([xy[pids == p].mean(0) for p in (1, 2, 3)])
    within = max(np.linalg.norm(xy[pids == p] - centres[i], axis=1).max() for i, p in enumerate((1, 2, 3)))
    between = min(np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3))
    assert between > 3 * within and len(embedding_map(emb, ws.pids, max_points=7)["xy"]) == 7


def test_report_training_plots_a_run_log(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    recs = [{"phase": "encoder", "epoch": e, "loss": 5.0 / e, "val_loss": 6.0 / e} for e in (1, 2, 3)]
    recs += [{"phase": "rn", "epoch": e, "loss": 1.0 / e, "acc_val": 0.2 * e} for e in (1, 2, 3)]
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + '\n{"phase": "rn", "ep')  # torn line
    assert cli.main(["report", "--training", str(run)]) == 0
    assert capsys.readouterr().out.strip() == str(run / "training.png")
    img = _read_png(run / "training.png")
    assert img.shape[1] > 1.5 * img.shape[0]  # one panel per phase, side by side
    assert cli.main(["report", "--training", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no training log" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["report"]) == 2
