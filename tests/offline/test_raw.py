"""Raw readers of BIWI, IAS-Lab, KGBD and KS20 (DATA_PREP.md §1) on hand-written files and synthetic trees."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from offline.datasets.base import DatasetError
from offline.datasets.raw import (dataset_folder, parse_kgbd_sequence, parse_ks20_frame, parse_skel_frame, read_raw,
                                  trim_recording)
from offline.synth_raw import write_raw_tree

PEOPLE, FRAMES = 3, 26


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """(root, {dataset: SynthRawInfo}): one tiny synthetic raw tree of every dataset."""
    root = tmp_path_factory.mktemp("raw")
    return root, {ds: write_raw_tree(root, ds, people=PEOPLE, frames=FRAMES, seed=1)
                  for ds in ("BIWI", "IAS", "KGBD", "KS20")}


@pytest.fixture(scope="module")
def raw_root(tree) -> Path:
    return tree[0]


@pytest.fixture(scope="module")
def infos(tree):
    return tree[1]


def _skel(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "00001_skel.txt"
    p.write_text("\n".join(rows) + "\n")
    return p


def test_skel_frame_fields_and_tracking(tmp_path):
    rows = [f"{j},{0.1 * j},{1.0 + j},{2.5},100,200,2,1" for j in range(20)] + ["20,9,9,9,0,0,2,1"]
    xyz, tracked = parse_skel_frame(_skel(tmp_path, rows))
    assert tracked and xyz.shape == (20, 3)  # only the first 20 lines
    assert xyz[3].tolist() == pytest.approx([0.3, 4.0, 2.5])
    rows[7] = "7,0.1,0.2,0.3,100,200,0,1"  # tracking state 0
    assert parse_skel_frame(_skel(tmp_path, rows))[1] is False
    with pytest.raises(ValueError, match="12 joint lines"):
        parse_skel_frame(_skel(tmp_path, rows[:12]))
    rows[2] = "2,0.1,abc,0.3,1,1,2,1"
    with pytest.raises(ValueError):
        parse_skel_frame(_skel(tmp_path, rows))


def test_kgbd_sequence_and_truncation(tmp_path):
    names = [f"J{j}" for j in range(20)]
    lines = [f"{names[j]};{t};{j};{t + j}" for t in range(3) for j in range(20)]
    p = tmp_path / "1.txt"
    p.write_text("\n".join(lines) + "\n")
    seq = parse_kgbd_sequence(p)
    assert seq.shape == (3, 20, 3) and seq[2, 5].tolist() == [2, 5, 7]
    p.write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(ValueError, match="not a multiple of 20"):
        parse_kgbd_sequence(p)
    lines[25] = "Wrong;1;2;3"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="joint 'Wrong'"):
        parse_kgbd_sequence(p)


def test_ks20_frame(tmp_path):
    p = tmp_path / "gc1_body3_100.txt"
    p.write_text("\n".join(f"{j},{j},{-j},{0.5}" for j in range(25)) + "\n")
    assert parse_ks20_frame(p)[24].tolist() == [24, -24, 0.5]


def test_trimming():
    seq = np.arange(30)[:, None, None] * np.ones((1, 2, 3))
    assert trim_recording(seq, 10)[:, 0, 0].tolist() == list(range(10, 20))
    assert trim_recording(seq, 10, start_only=True)[:, 0, 0].tolist() == list(range(10, 30))
    assert len(trim_recording(seq, 15)) == 0


@pytest.mark.parametrize("dataset", ["BIWI", "IAS", "KGBD", "KS20"])
def test_synthetic_tree_reads_back(raw_root, infos, dataset):
    info = infos[dataset]
    raw = read_raw(dataset, raw_root, trim=10)
    J = 25 if dataset == "KS20" else 20
    assert {r.name for r in raw.recordings} == set(info.kept_frames)
    for r in raw.recordings:
        assert r.joints.shape == (info.kept_frames[r.name] - 20, J, 3) and r.joints.dtype == np.float64
        assert r.pid == info.pids[r.name]
        if r.name in info.clean:  # the frames written, in order, trimmed 10 at each end (text has 6 decimals)
            np.testing.assert_allclose(r.joints, info.walks[r.name][10:-10], atol=1e-6)
    assert info.clean & {r.name for r in raw.recordings}  # at least one recording compared value by value
    # every malformed file named and skipped, nothing else
    assert sorted(Path(p).relative_to(raw.root).as_posix() for p, _ in raw.skipped) == sorted(info.bad_files)
    assert raw.frames_untracked == info.untracked
    assert (raw.frames_untracked > 0) == (dataset in ("BIWI", "IAS"))
    summary = raw.summary()
    assert f"{len(info.bad_files)} malformed file(s) skipped" in summary
    for bad in info.bad_files:
        assert bad.split("/")[-1] in summary
    # sorted, deterministic order: split, person, name
    assert [r.name for r in raw.recordings] == [r.name for r in read_raw(dataset, raw_root / dataset).recordings]


def test_splits_and_ids(raw_root):
    biwi = read_raw("BIWI", raw_root)
    assert {(r.split, r.pid) for r in biwi.recordings} == (
        {("train", p) for p in range(PEOPLE)} | {(s, p) for s in ("Walking", "Still") for p in range(PEOPLE - 1)})
    ias = read_raw("IAS", raw_root)
    assert {r.split for r in ias.recordings} == {"train", "A", "B"}
    assert {r.pid for r in ias.recordings} == set(range(1, PEOPLE + 1))
    kgbd = read_raw("KGBD", raw_root)
    per_person = {p: sum(r.pid == p for r in kgbd.recordings) for p in {r.pid for r in kgbd.recordings}}
    assert per_person[2] == 3  # the person with three sequences
    ks20 = read_raw("KS20", raw_root)
    assert ks20.body_map == {1: 0, 5: 1, 7: 2}  # gaps in body numbers -> 0..n-1 in sorted order
    assert len(ks20.recordings) == PEOPLE * 3 * 5
    assert {r.view for r in ks20.recordings} == {"frontal", "left_diagonal", "left_lateral", "right_diagonal",
                                                 "right_lateral"}


def test_ks20_frames_in_timestamp_order(raw_root, infos):
    """gc1 timestamps cross 100000: name order is not time order; frames must follow the numbers."""
    raw = read_raw("KS20", raw_root, trim=0)
    rec = next(r for r in raw.recordings if r.name == "left_lateral/gc1_body5")
    np.testing.assert_allclose(rec.joints, infos["KS20"].walks[rec.name], atol=1e-6)
    names = sorted(p.name for p in (raw_root / "KS20" / "left_lateral").glob("gc1_body5_*"))
    assert int(names[0].split("_")[2].split(".")[0]) >= 100000  # lexical order starts after the wrap


def test_original_asymmetric_trim(raw_root, infos):
    info = infos["IAS"]
    raw = read_raw("IAS", raw_root, trim=10, original_trim=True)
    for r in raw.recordings:
        expected = info.kept_frames[r.name] - (10 if r.split == "train" else 20)
        assert r.T == expected, r.name
    biwi = read_raw("BIWI", raw_root, trim=10, original_trim=True)  # only IAS training is asymmetric
    assert all(r.T == infos["BIWI"].kept_frames[r.name] - 20 for r in biwi.recordings)


def test_folder_errors(tmp_path, raw_root):
    assert dataset_folder("KGBD", raw_root) == raw_root / "KGBD"
    inner = raw_root / "KGBD" / "kinect gait raw dataset"
    assert dataset_folder("KGBD", inner) == inner
    with pytest.raises(DatasetError, match=str(tmp_path)):
        read_raw("BIWI", tmp_path)
    with pytest.raises(DatasetError, match="no such folder"):
        read_raw("IAS", tmp_path / "nope")
    (tmp_path / "BIWI" / "Training" / "1").mkdir(parents=True)
    (tmp_path / "BIWI" / "Testing" / "Walking").mkdir(parents=True)
    with pytest.raises(DatasetError, match="Testing/Still"):
        read_raw("BIWI", tmp_path)


def test_synth_raw_command(tmp_path, capsys):
    from offline.synth_raw import main

    assert main([str(tmp_path), "--dataset", "KGBD", "--people", "3", "--frames", "30"]) == 0
    assert "1 malformed file(s)" in capsys.readouterr().out
    assert len(read_raw("KGBD", tmp_path).recordings) == 4 + 3 + 4 - 1  # 4, 3, 4 sequences, one truncated
    with pytest.raises(FileExistsError):
        write_raw_tree(tmp_path, "KGBD", people=3)
    assert [p.name for p in tmp_path.iterdir()] == ["KGBD"]  # no temp folder left behind


def test_ias_person_id_from_nested_folders(tmp_path):
    rows = "\n".join(f"{j},{j},0,3,0,0,2,1" for j in range(20)) + "\n"
    for split in ("Training", "TestingA", "TestingB"):
        leaf = tmp_path / "IAS" / split / "person_07" / "skeleton"  # leaf without an integer: its parent's
        leaf.mkdir(parents=True)
        for t in range(3):
            (leaf / f"{t:03d}_skel.txt").write_text(rows)
    raw = read_raw("IAS", tmp_path, trim=0)
    assert [(r.split, r.pid, r.T) for r in raw.recordings] == [("train", 7, 3), ("A", 7, 3), ("B", 7, 3)]
    assert raw.recordings[0].name == "Training/person_07/skeleton"
