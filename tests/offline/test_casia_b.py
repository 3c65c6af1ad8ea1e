"""`cagereid casia-b`: a small CASIA-B-named tree (real video clips + a corrupt file, or OpenPose JSON) ->
sequences, CVE/CME layouts, manifest, failure report, resumable reruns."""
from __future__ import annotations

import json

import numpy as np
import pytest

from offline import casia_b as C
from offline.datasets.cage_layout import read_cage_dataset

def test_parse_name():
    n = C.parse_name("001-nm-01-090.avi")
    assert (n.subject, n.condition, n.seq, n.angle, n.view) == (1, "nm", 1, 90, 5)
    assert n.stem == "001-nm-01-090" and C.parse_name("124-cl-02-180").view == 10
    for bad in ("001-xx-01-090.avi", "1-nm-01-090.avi", "001-nm-01-091.avi", "001-nm-01-198", "walk.avi"):
        assert C.parse_name(bad) is None, bad
    assert len({C.parse_name(s).recording for s in ("001-nm-01-090", "001-bg-01-090", "001-nm-01-072",
                                                     "002-nm-01-090")}) == 4


def _clip_tree(video, root, names, frames=15, size=(320, 180)):
    """Write ``frames``-frame MJPG clips of consecutive parts of the real video under CASIA-B names."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    imgs = []
    while len(imgs) < frames * len(names):
        ok, img = cap.read()
        if not ok:
            break
        imgs.append(cv2.resize(img, size))
    cap.release()
    for i, name in enumerate(names):
        d = root / name[:3]
        d.mkdir(parents=True, exist_ok=True)
        w = cv2.VideoWriter(str(d / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
        for img in imgs[i * frames:(i + 1) * frames]:
            w.write(img)
        w.release()


def test_video_tree_end_to_end(shared_data, tmp_path):
    from cagereid.cli import main

    video = shared_data / "video" / "openpose_walk.avi"
    if not video.is_file():
        pytest.skip(f"{video} is absent")
    tree, out = tmp_path / "CASIA-B", tmp_path / "out"
    names = ["001-nm-01-090", "001-nm-05-090", "002-nm-01-090", "002-bg-01-090", "002-cl-01-090"]
    _clip_tree(video, tree, names)
    (tree / "003").mkdir()
    (tree / "003" / "003-nm-01-090.avi").write_bytes(b"this is not a video" * 50)  # corrupt
    (tree / "003" / "holiday.avi").write_bytes(b"x")  # not a CASIA-B name
    args = ["casia-b", str(tree), "--out", str(out), "--cve-f", "10", "--cme-f", "10", "--cme-train-subjects", "1",
            "--workers", "2", "--quiet"]
    assert main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["finished"] and manifest["settings"]["pose"] == "mediapipe"
    assert sorted(k for k, e in manifest["items"].items() if e["status"] == "ok") == sorted(names)
    failures = (out / "failures.txt").read_text().splitlines()
    assert len(failures) == 2
    assert any("003-nm-01-090.avi" in f and "cannot open" in f for f in failures)
    assert any("holiday.avi" in f and "SSS-CC-NN-VVV" in f for f in failures)

    n_windows = {}
    for name in names:
        with np.load(out / "sequences" / f"{name}.npz", allow_pickle=False) as z:
            joints = z["joints"]
        assert 12 <= len(joints) <= 15 and joints.shape[1:] == (14, 3) and np.isfinite(joints).all()
        assert (joints[:, 0, 1] < joints[:, 10, 1]).all()  # pixels, y down: head above the right ankle
        n_windows[name] = len(joints) - 10 + 1

    cve = read_cage_dataset(out / "Datasets", "CASIA_B", 10, view=5)  # 090 degrees = view 5
    assert set(np.unique(cve["train"].pids)) == {1, 2}  # nm-01 of both subjects
    assert cve["train"].n == n_windows["001-nm-01-090"] + n_windows["002-nm-01-090"]
    assert cve["test"].n == sum(n_windows[n] for n in ("001-nm-05-090", "002-bg-01-090", "002-cl-01-090"))
    assert cve["train"].windows.shape[1:] == (10, 14, 3)
    cme = read_cage_dataset(out / "Datasets", "CASIA_B_match", 10)
    assert set(cme["train"].pids) == {1} and {int(p) for c in ("nm", "bg", "cl") for p in cme[c].pids} == {2}
    assert cme["test_all"].n == cme["nm"].n + cme["bg"].n + cme["cl"].n

    before = (out / "sequences" / "001-nm-01-090.npz").stat().st_mtime_ns
    res = C.convert_tree(tree, out, C.Settings(pose="mediapipe", lifter="", k=0),
                         C.SplitConfig(cve_f=(10,), cme_f=(10,), cme_train_subjects=1), workers=1, progress=False,
                         log=lambda *a: None)
    assert sorted(res.skipped) == sorted(names) and res.converted == []
    assert len(res.failed) == 2  # the corrupt file is tried again and reported again
    assert (out / "sequences" / "001-nm-01-090.npz").stat().st_mtime_ns == before


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from offline import lift_library as LL

    path = tmp_path_factory.mktemp("lib") / "library.npz"
    LL.build_library(LL.LibraryConfig(sources=("synthetic",), synthetic_identities=4, synthetic_frames=40, views=4),
                     path, log=lambda *a: None)
    return path


def test_openpose_json_tree_with_lifting(tmp_path, library, openpose_walk, casia_view):
    tree, out = tmp_path / "op", tmp_path / "out"
    for pid in (0, 1):
        for cond, seq in (("nm", 1), ("nm", 5), ("bg", 1)):
            for angle in (0, 90):
                uv, _ = casia_view(angle, pid=pid, frames=30, seed=3 + seq)
                folder = tree / f"{pid + 1:03d}-{cond}-{seq:02d}-{angle:03d}"
                folder.mkdir(parents=True)
                openpose_walk(folder, uv + 200.0, stem=folder.name)
    broken = tree / "002-cl-01-090"
    broken.mkdir()
    uv, _ = casia_view(90, pid=1, frames=30)
    openpose_walk(broken, uv + 200.0, stem=broken.name, drop=(8, 11))  # hips never detected
    settings = C.Settings(pose="openpose-json", lifter="matching", lifter_file=str(library), k=2)
    splits = C.SplitConfig(cve_f=(10,), cme_f=(10,), cme_train_subjects=1)
    res = C.convert_tree(tree, out, settings, splits, workers=1, progress=False, log=lambda *a: None)
    assert len(res.converted) == 12
    assert [p for p, _ in res.failed] == [str(broken)]
    assert "never detected" in res.failed[0][1]
    for v in (0, 5):
        cve = read_cage_dataset(out / "Datasets", "CASIA_B", 10, view=v)
        assert cve["train"].n == 2 * 21 and cve["test"].n == 2 * 2 * 21
        assert np.isfinite(cve["test"].windows).all()
    # no cl sequence converted -> the CME layout cannot be complete, and says so
    assert res.datasets["CASIA_B_match"] == {} and any("cl" in s for s in res.datasets["not_written"])
    with pytest.raises(C.OfflineError, match="other settings"):
        C.convert_tree(tree, out, C.Settings(pose="openpose-json", lifter="matching", lifter_file=str(library), k=5),
                       splits, workers=1, progress=False, log=lambda *a: None)
    again = C.convert_tree(tree, out, settings, splits, workers=1, progress=False, log=lambda *a: None)
    assert len(again.skipped) == 12 and again.converted == []


def test_shards_then_merge_give_the_unsharded_layouts(tmp_path, library, openpose_walk, casia_view, capsys):
    """--shard K/N splits a tree by a hash of the names (any scheduler can run the N jobs); --merge builds the
    same manifest entries and CVE / CME layouts as one unsharded run."""
    from cagereid.cli import main

    tree = tmp_path / "op"
    for pid in (0, 1):
        for cond, seq in (("nm", 1), ("nm", 5), ("bg", 1), ("cl", 1)):
            uv, _ = casia_view(90, pid=pid, frames=30, seed=3 + seq)
            folder = tree / f"{pid + 1:03d}-{cond}-{seq:02d}-090"
            folder.mkdir(parents=True)
            openpose_walk(folder, uv + 200.0, stem=folder.name)
    (tree / "not-a-casia-name").mkdir()
    openpose_walk(tree / "not-a-casia-name", uv + 200.0, stem="x")
    base = ["casia-b", "--data-root", str(tree), "--pose", "openpose-json", "--lifter-file", str(library),
            "--cve-f", "10", "--cme-f", "10", "--cme-train-subjects", "1", "--workers", "1", "--quiet"]
    items = C.discover(tree, "openpose-json")
    assert sorted(C.shard_of(it, 3) for it in items) != [1] * len(items)  # the hash spreads them
    assert main(base + ["--out", str(tmp_path / "one")]) == 0
    sharded = tmp_path / "sharded"
    assert main(["casia-b", "--merge", "--out", str(sharded)]) == 2  # before any shard: one-line error
    for k in (3, 1):
        assert main(base + ["--out", str(sharded), "--shard", f"{k}/3"]) == 0
    assert not (sharded / "Datasets").exists()  # shards build no layout
    assert main(["casia-b", "--merge", "--out", str(sharded)]) == 2
    assert "2/3 missing" in capsys.readouterr().err
    assert main(base + ["--out", str(sharded), "--shard", "2/3"]) == 0
    assert main(["casia-b", "--merge", "--out", str(sharded)]) == 0
    one = json.loads((tmp_path / "one" / "manifest.json").read_text())
    merged = json.loads((sharded / "manifest.json").read_text())
    assert {k: v["status"] for k, v in merged["items"].items()} == {k: v["status"] for k, v in one["items"].items()}
    assert merged["datasets"] == one["datasets"] and merged["datasets"]["CASIA_B_match"]
    assert (sharded / "failures.txt").read_text() == (tmp_path / "one" / "failures.txt").read_text()
    a = read_cage_dataset(tmp_path / "one" / "Datasets", "CASIA_B", 10, view=5)
    b = read_cage_dataset(sharded / "Datasets", "CASIA_B", 10, view=5)
    assert np.array_equal(a["test"].windows, b["test"].windows) and np.array_equal(a["train"].pids, b["train"].pids)
    assert main(base + ["--out", str(sharded), "--shard", "4/3"]) == 2


def test_manifest_entries_never_name_files_outside_the_output_folder(tmp_path):
    """A manifest is data, not a list of paths: only keys that are exact CASIA-B names are read, from
    OUT/sequences/."""
    import numpy as np

    from offline.casia_b import load_sequences

    out = tmp_path / "out"
    (out / "sequences").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    joints = np.zeros((30, 14, 3))
    np.savez(elsewhere / "001-nm-01-090.npz", joints=joints + 7)
    np.savez(out / "sequences" / "002-nm-01-090.npz", joints=joints)
    entries = {"../../elsewhere/001-nm-01-090": {"status": "ok"}, "002-nm-01-090": {"status": "ok"},
               "003-nm-01-090": "not a dict"}
    seqs = load_sequences(out, entries)
    assert [n.stem for n, _ in seqs] == ["002-nm-01-090"]
    assert float(seqs[0][1].max()) == 0.0
