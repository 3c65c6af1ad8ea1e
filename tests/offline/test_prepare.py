"""`cagereid prepare`: raw synthetic trees -> both layouts -> readers, window counts by hand, seeds, reruns."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cagereid import cli
from offline import protocols as P
from offline.datasets.base import DatasetError
from offline.datasets.cage_layout import read_cage_dataset
from offline.datasets.p2_layout import read_p2_dataset
from offline.datasets.raw import read_raw
from offline.prepare import PrepareConfig, Recording, cut_windows, prepare
from offline.synth_raw import write_raw_tree

DATASETS = ("BIWI", "IAS", "KGBD", "KS20")
PEOPLE, FRAMES, TRIM = 3, 24, 4  # short walks keep the per-frame KS20 tree small


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    infos = {ds: write_raw_tree(root, ds, people=PEOPLE, frames=FRAMES, seed=2) for ds in DATASETS}
    return root, infos


def n_windows(T: int, f: int, offset: int, stride: int) -> int:
    """Hand formula: windows [s, s+f) with s = offset, offset+stride, ... inside T frames."""
    return 0 if T - offset < f else (T - offset - f) // stride + 1


def test_window_count_by_hand():
    """A 23-frame recording, f = 4: P2 training cut = offsets 0..3, stride 2 -> 10 + 10 + 9 + 9 windows."""
    T, f = 23, 4
    rec = Recording(rid=5, pid=9, name="r", role="train", joints=np.arange(T * 20 * 3, dtype=float).reshape(T, 20, 3))
    ws = cut_windows([rec], f, range(f), 2, "BIWI", "train")
    assert ws.n == 38 == sum(n_windows(T, f, s, 2) for s in range(f))
    assert ws.offset.tolist() == [0] * 10 + [1] * 10 + [2] * 9 + [3] * 9  # offset-major
    assert ws.start[:10].tolist() == list(range(0, 19, 2)) and ws.start[10:20].tolist() == list(range(1, 20, 2))
    assert ws.start[-1] == 19 and (ws.recording == 5).all() and (ws.pids == 9).all()
    assert np.array_equal(ws.windows[11], rec.joints[3:7])  # window = frames [start, start+f)
    test = cut_windows([rec], f, [0], f, "BIWI", "probe")  # test cut: offset 0, stride f
    assert test.n == 5 and test.start.tolist() == [0, 4, 8, 12, 16]
    cage = cut_windows([rec], f, range(10), f, "BIWI", "train")  # CAGE: 10 rounds of non-overlapping windows
    assert cage.n == sum(n_windows(T, f, s, f) for s in range(10)) == 5 + 5 + 5 + 5 + 4 + 4 + 4 + 4 + 3 + 3


def _expected(dataset, layout, f, roles, lengths):
    """{split: N} from the recordings' lengths and roles, by the DATA_PREP §3 / CAGE_SPEC §1.4 rules."""
    def total(names, offsets, stride):
        return sum(n_windows(lengths[n], f, s, stride) for s in offsets for n in names)

    by_role: dict[str, list[str]] = {}
    for name, role in roles.items():
        by_role.setdefault(role, []).append(name)
    if layout == "p2":
        out = {"train": total(by_role.get("train", []), [0], f) if dataset == "KGBD"
               else total(by_role.get("train", []), range(f), max(1, f // 2))}
        for split in P.P2_SPLITS[dataset][1:]:
            out[split] = total(by_role.get(split, []), [0], f)
        return out
    if dataset in ("KGBD", "KS20"):
        return {"train": total([n for n, r in roles.items() if r != "probe"], range(10), f),
                "test": total(by_role["probe"], range(10), f)}
    out = {s: total(by_role.get(s, []), range(10), f) for s in P.CAGE_SPLITS[dataset]}
    if dataset == "BIWI":  # training keeps only the people of the test splits (the last person is not tested)
        test_people = {n.split("/")[-1] for s in ("Walking", "Still") for n in by_role[s]}
        out["train"] = total([n for n in by_role["train"] if n.split("/")[-1] in test_people], range(10), f)
    return out


@pytest.mark.parametrize("layout", ["p2", "cage"])
@pytest.mark.parametrize("f", [4, 6, 8, 10])
@pytest.mark.parametrize("dataset", DATASETS)
def test_prepare_then_read(tree, tmp_path, dataset, f, layout):
    root, infos = tree
    info = infos[dataset]
    res = prepare(PrepareConfig(trim=TRIM, dataset=dataset, raw_root=str(root), f=f, layout=layout, seed=0,
                                out=str(tmp_path)))
    assert not res.up_to_date
    splits_doc = json.loads((tmp_path / dataset / str(f) / "splits.json").read_text())
    roles = {r["name"]: r["role"] for r in splits_doc["recordings"]}
    lengths = {n: k - 2 * TRIM for n, k in info.kept_frames.items()}
    assert set(roles) == set(lengths)
    read = read_p2_dataset if layout == "p2" else read_cage_dataset
    got = read(tmp_path, dataset, f)
    assert list(got) == list((P.P2_SPLITS if layout == "p2" else P.CAGE_SPLITS)[dataset])
    expected = _expected(dataset, layout, f, roles, lengths)
    assert {s: ws.n for s, ws in got.items()} == expected
    J = 25 if dataset == "KS20" else 20
    rid_name = {r["id"]: r["name"] for r in splits_doc["recordings"]}
    for split, ws in got.items():
        assert ws.windows.shape == (expected[split], f, J, 3) and ws.f == f
        assert ws.layout == P.LAYOUT_OF[dataset]
        assert sorted(set(ws.pids.tolist())) == sorted({info.pids[rid_name[r]] for r in set(ws.recording.tolist())})
        # offset-major, then person by person
        key = ws.offset * 10_000 + ws.pids
        assert np.all(np.diff(key) >= 0)
        for i in range(ws.n):  # metadata points at the frames the window holds (text has 6 decimals)
            name = rid_name[int(ws.recording[i])]
            if name in info.clean:
                s = int(ws.start[i]) + TRIM
                np.testing.assert_allclose(ws.windows[i], info.walks[name][s:s + f], atol=1e-6)
    # skipped files are named in the manifest and the run went on
    manifest = json.loads((tmp_path / dataset / str(f) / f"prepare_{layout}.json").read_text())
    assert sorted(p for p, _ in manifest["skipped"]) == sorted(info.bad_files)
    assert {s: w["N"] for s, w in manifest["windows"].items()} == expected


def test_p2_ids_and_people(tree, tmp_path):
    root, infos = tree
    prepare(PrepareConfig(trim=TRIM, dataset="BIWI", raw_root=str(root), f=6, layout="p2", out=str(tmp_path)))
    got = read_p2_dataset(tmp_path, "BIWI", 6)
    assert sorted(got["train"].ids_dict()) == list(range(PEOPLE))  # P2 gallery = every training person
    assert sorted(got["Walking"].ids_dict()) == list(range(PEOPLE - 1))
    prepare(PrepareConfig(trim=TRIM, dataset="BIWI", raw_root=str(root), f=6, layout="cage", out=str(tmp_path)))
    cage = read_cage_dataset(tmp_path, "BIWI", 6)
    assert sorted(cage["train"].ids_dict()) == list(range(PEOPLE - 1))  # CAGE: only the tested people


def test_kgbd_and_ks20_choices(tree, tmp_path):
    root, _ = tree
    for seed in (0, 1):
        prepare(PrepareConfig(trim=TRIM, dataset="KGBD", raw_root=str(root), f=4, seed=seed,
                              out=str(tmp_path / str(seed))))
        doc = json.loads((tmp_path / str(seed) / "KGBD" / "4" / "splits.json").read_text())
        raw = read_raw("KGBD", root)
        for pid, ch in doc["choices"].items():
            n = sum(r.pid == int(pid) for r in raw.recordings)
            assert (len(ch["gallery"]), len(ch["probe"])) == ((2, 1) if n >= 4 else (1, 1))
            assert not set(ch["gallery"]) & set(ch["probe"])
    prepare(PrepareConfig(trim=TRIM, dataset="KS20", raw_root=str(root), f=4, seed=0, out=str(tmp_path / "ks")))
    doc = json.loads((tmp_path / "ks" / "KS20" / "4" / "splits.json").read_text())
    assert doc["body_map"] == {"1": 0, "5": 1, "7": 2}
    for ch in doc["choices"].values():
        g = {n.split("/")[1].split("_")[0] for n in ch["gallery"]}
        p = {n.split("/")[1].split("_")[0] for n in ch["probe"]}
        assert len(g) == len(p) == 1 and g != p  # one setting each, different
        assert len(ch["gallery"]) == len(ch["probe"]) == 5  # every view of the setting


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("dataset", ["KGBD", "KS20"])
def test_same_seed_same_bytes_other_seed_other_split(tree, tmp_path, dataset):
    root, _ = tree
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        for layout in ("p2", "cage"):
            prepare(PrepareConfig(trim=TRIM, dataset=dataset, raw_root=str(root), f=6, layout=layout, seed=seed,
                                  out=str(tmp_path / name)))
    a, b, c = (_files(tmp_path / n / dataset / "6") for n in "abc")
    assert a == b  # byte-identical, manifests included
    assert json.loads(a["splits.json"])["choices"] != json.loads(c["splits.json"])["choices"]
    x = f"test_npy_data/probe/t_source_x_{dataset}_6.npy"
    assert a[x] != c[x]  # other probe recordings


def test_rerun_is_a_noop_and_force_rebuilds(tree, tmp_path):
    root, _ = tree
    cfg = dict(dataset="IAS", raw_root=str(root), f=4, layout="p2", out=str(tmp_path), trim=TRIM)
    prepare(PrepareConfig(**cfg))
    files = sorted((tmp_path / "IAS" / "4").rglob("*.np*"))
    stamps = [p.stat().st_mtime_ns for p in files]
    again = prepare(PrepareConfig(**cfg))
    assert again.up_to_date and [p.stat().st_mtime_ns for p in files] == stamps
    assert not prepare(PrepareConfig(**cfg, force=True)).up_to_date
    assert not prepare(PrepareConfig(**{**cfg, "trim": 3})).up_to_date  # other arguments: rebuilt
    files[0].unlink()  # a missing output file: rebuilt
    assert not prepare(PrepareConfig(**{**cfg, "trim": 3})).up_to_date and files[0].is_file()


def test_interrupted_write_leaves_no_manifest(tree, tmp_path, monkeypatch):
    root, _ = tree
    import offline.datasets.p2_layout as p2

    real = p2.write_p2_split
    calls = []

    def flaky(*a, **k):
        calls.append(a[3])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(p2, "write_p2_split", flaky)
    cfg = PrepareConfig(trim=TRIM, dataset="KGBD", raw_root=str(root), f=4, out=str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        prepare(cfg)
    base = tmp_path / "KGBD" / "4"
    assert not (base / "prepare_p2.json").exists()
    assert not [p for p in base.rglob(".*") if p.is_file()]  # no temp files left behind
    monkeypatch.setattr(p2, "write_p2_split", real)
    assert not prepare(PrepareConfig(trim=TRIM, dataset="KGBD", raw_root=str(root), f=4, out=str(tmp_path))).up_to_date
    assert read_p2_dataset(tmp_path, "KGBD", 4)["probe"].n > 0


def test_cli_prints_skipped_files_and_errors(tree, tmp_path, capsys):
    root, infos = tree
    rc = cli.main(["prepare", "--dataset", "biwi", "--data-root", str(root / "BIWI"), "--length", "4", "6",
                   "--layout", "both", "--out", str(tmp_path), "--quiet", "--trim", str(TRIM)])
    out = capsys.readouterr().out
    assert rc == 0
    for bad in infos["BIWI"].bad_files:
        assert f"skipped {bad}:" in out
    skipped_lines = [ln for ln in out.splitlines() if ln.startswith("skipped ")]
    assert len(skipped_lines) == 4 * len(infos["BIWI"].bad_files)  # one line per file, per f and layout
    assert all(": " in ln[len("skipped "):] for ln in skipped_lines)  # path and reason on the same line
    assert "malformed file(s) skipped" in out and "untracked frame(s) dropped" in out
    assert (tmp_path / "BIWI" / "6" / "BIWI_train_npy_data").is_dir()
    assert (tmp_path / "BIWI" / "4" / "train_npy_data").is_dir()
    rc = cli.main(["prepare", "--dataset", "BIWI", "--data-root", str(root / "BIWI"), "--length", "4",
                   "--out", str(tmp_path), "--quiet", "--trim", str(TRIM)])
    assert rc == 0 and "up to date" in capsys.readouterr().out
    # user errors: one line, exit 2, the offending path named
    for argv, needle in ((["--dataset", "KS20", "--data-root", str(tmp_path / "nope")], "nope"),
                         (["--dataset", "IAS", "--data-root", str(root / "BIWI")], str(root / "BIWI")),
                         (["--dataset", "UCALGARY", "--data-root", str(tmp_path), "--layout", "cage"], "no CAGE layout"),
                         (["--dataset", "KGBD", "--data-root", str(root), "--length", "40"], "no window of f=40")):
        rc = cli.main(["prepare", *argv, "--out", str(tmp_path / "err"), "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err, err


def test_changing_seed_under_the_other_layout_is_refused(tree, tmp_path):
    root, _ = tree
    prepare(PrepareConfig(trim=TRIM, dataset="KS20", raw_root=str(root), f=4, layout="cage", seed=1, out=str(tmp_path)))
    with pytest.raises(ValueError, match="--seed 1"):
        prepare(PrepareConfig(trim=TRIM, dataset="KS20", raw_root=str(root), f=4, layout="p2", seed=2,
                              out=str(tmp_path)))
    with pytest.raises(ValueError, match="--trim 4"):
        prepare(PrepareConfig(trim=2, dataset="KS20", raw_root=str(root), f=4, layout="p2", seed=1, out=str(tmp_path)))
    prepare(PrepareConfig(trim=TRIM, dataset="KS20", raw_root=str(root), f=4, layout="p2", seed=1, out=str(tmp_path)))


def test_ucalgary_real_data(ucalgary_root, tmp_path):
    res = prepare(PrepareConfig(dataset="UCALGARY", raw_root=str(ucalgary_root), f=6, layout="p2", out=str(tmp_path)))
    got = read_p2_dataset(tmp_path, "UCALGARY", 6)
    assert list(got) == ["train", "gallery", "same", "cross"]
    assert 10 not in set(got["gallery"].pids.tolist())  # sub10 duplicates sub4 and is dropped
    assert len(set(got["gallery"].pids.tolist())) == 13
    assert set(got["same"].pids.tolist()) <= set(got["gallery"].pids.tolist())
    assert any("duplicate" in n for n in res.notes)
    assert got["train"].n > got["gallery"].n  # multi-offset half-overlapping training cut


def test_missing_raw_folder_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        prepare(PrepareConfig(trim=TRIM, dataset="KGBD", raw_root=str(tmp_path / "x"), f=4, out=str(tmp_path)))


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["BIWI", "KGBD"])
def test_raw_to_evaluate_p2(tree, tmp_path, dataset):
    """raw -> prepare -> `cagereid evaluate --protocol p2`: BIWI with a tiny CAGE model and both baselines,
    KGBD with the baselines (the CAGE part of evaluate is the evaluation code's to test)."""
    pytest.importorskip("offline.evaluate")
    root, _ = tree
    prepare(PrepareConfig(trim=TRIM, dataset=dataset, raw_root=str(root), f=6, layout="p2", out=str(tmp_path / "D")))
    argv = ["evaluate", "--dataset", dataset, "--data-root", str(tmp_path / "D"), "--length", "6",
            "--protocol", "p2", "--distance", "euclidean", "--out", str(tmp_path / "ev")]
    methods = {"raw-kNN", "D13-kNN"}
    if dataset == "BIWI":
        (tmp_path / "tiny.yaml").write_text("hidden: 16\nepochs: 1\nrn_epochs: 1\n")
        argv += ["--train", "--config", str(tmp_path / "tiny.yaml"), "--device", "cpu"]
        methods.add("CAGEs")
    else:
        argv += ["--methods", "raw-kNN,D13-kNN"]
    assert cli.main(argv) == 0
    rows = json.loads((tmp_path / "ev" / "report.json").read_text())["rows"]
    names = {name for name, _, _ in P.p2_gallery_probe_pairs(dataset)}
    assert {r["split"] for r in rows} == names
    for r in rows:
        assert {"rank1", "rank5", "rank10", "mAP"} <= set(r) and 0 <= r["rank1"] <= r["rank5"] <= r["rank10"] <= 1
    assert {r["method"] for r in rows} == methods


def test_raw_root_spelling_does_not_change_the_data(tree, tmp_path):
    """--raw-root as the parent, the dataset folder or (KGBD) its inner folder: same splits, same bytes."""
    root, _ = tree
    outs = []
    for i, rr in enumerate((root, root / "KGBD", root / "KGBD" / "kinect gait raw dataset")):
        prepare(PrepareConfig(trim=TRIM, dataset="KGBD", raw_root=str(rr), f=4, out=str(tmp_path / str(i))))
        files = _files(tmp_path / str(i) / "KGBD" / "4")
        files.pop("prepare_p2.json")  # records the resolved --raw-root
        outs.append(files)
    assert outs[0] == outs[1] == outs[2]
