"""The retrieval (P2) layout: round trip, validation errors naming the file, protocol tables."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from offline import protocols as P
from offline.datasets.base import DatasetError, WindowSet
from offline.datasets.legacy import load_ids_dict
from offline.datasets.p2_layout import (p2_files, read_p2_dataset, read_p2_split, write_p2_dataset)


def _ws(dataset: str, split: str, n: int = 12, f: int = 4, people: int = 3, seed: int = 0) -> WindowSet:
    J = P.JOINTS[dataset]
    rng = np.random.default_rng(seed)
    pids = np.array([7, 3, 11][:people])[np.arange(n) % people]
    return WindowSet(rng.normal(size=(n, f, J, 3)), pids, dataset, split, P.LAYOUT_OF[dataset],
                     recording=np.arange(n) % 5, offset=np.arange(n) // 6, start=np.arange(n) * 2)


def _write(tmp_path, dataset="KGBD", f=4):
    splits = {s: _ws(dataset, s, f=f, seed=i) for i, s in enumerate(P.P2_SPLITS[dataset])}
    write_p2_dataset(tmp_path, dataset, f, splits)
    return splits


@pytest.mark.parametrize("dataset", ["BIWI", "IAS", "KGBD", "KS20", "UCALGARY"])
def test_round_trip_is_exact(tmp_path, dataset):
    splits = _write(tmp_path, dataset)
    back = read_p2_dataset(tmp_path, dataset, 4)
    assert list(back) == list(P.P2_SPLITS[dataset])
    for name, ws in splits.items():
        got = back[name]
        assert got.windows.dtype == np.float64 and got.windows.shape == ws.windows.shape
        assert np.array_equal(got.windows, ws.windows)
        assert np.array_equal(got.pids, ws.pids)
        for k in ("recording", "offset", "start"):
            assert np.array_equal(getattr(got, k), getattr(ws, k))
        assert got.layout == P.LAYOUT_OF[dataset] and got.split == name


def test_file_names_follow_data_prep(tmp_path):
    _write(tmp_path, "BIWI", f=4)
    base = tmp_path / "BIWI" / "4"
    assert (base / "train_npy_data" / "source_x_BIWI_4.npy").is_file()
    assert (base / "train_npy_data" / "ids_BIWI_4.npy").is_file()
    assert (base / "train_npy_data" / "frame_id_BIWI_4.npy").is_file()
    assert (base / "test_npy_data" / "Walking" / "t_source_z_BIWI_4.npy").is_file()
    assert (base / "test_npy_data" / "Still" / "frame_id_BIWI_4.npy").is_file()
    x = np.load(base / "train_npy_data" / "source_x_BIWI_4.npy")
    assert x.shape == (12 * 4, 20) and x.dtype == np.float64  # (N*f, J), not centred
    ids = load_ids_dict(base / "train_npy_data" / "ids_BIWI_4.npy")  # the legacy pickled dict
    assert ids == {7: [0, 3, 6, 9], 3: [1, 4, 7, 10], 11: [2, 5, 8, 11]}


def _corrupt(kind: str, files: dict):
    if kind == "missing":
        files["y"].unlink()
        return files["y"]
    if kind == "rows":
        x = np.load(files["x"])
        np.save(files["x"], x[:-1])
        return files["x"]
    if kind == "nan":
        z = np.load(files["z"])
        z[3, 2] = np.nan
        np.save(files["z"], z)
        return files["z"]
    if kind == "joints":
        for c in "xyz":
            np.save(files[c], np.load(files[c])[:, :18])
        return files["x"]
    if kind == "mismatch":
        np.save(files["y"], np.load(files["y"])[:-4])
        return files["y"]
    if kind == "frame_id":
        np.save(files["frame_id"], np.load(files["frame_id"])[:-1])
        return files["frame_id"]
    if kind == "ids":
        from offline.datasets.legacy import save_ids_dict

        save_ids_dict(files["ids"], {7: [0, 3], 3: [1, 4, 7, 10], 11: [2, 5, 8, 11]})
        return files["ids"]
    if kind == "ids_wrong_person":
        from offline.datasets.legacy import save_ids_dict

        save_ids_dict(files["ids"], {3: [0, 3, 6, 9], 7: [1, 4, 7, 10], 11: [2, 5, 8, 11]})
        return files["ids"]
    if kind == "meta":
        files["meta"].write_bytes(b"not a zip")
        return files["meta"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "rows", "nan", "joints", "mismatch", "frame_id", "ids",
                                  "ids_wrong_person", "meta"])
def test_validation_names_the_file(tmp_path, kind):
    _write(tmp_path, "KGBD", f=4)
    bad = _corrupt(kind, p2_files(tmp_path, "KGBD", 4, "probe"))
    with pytest.raises(DatasetError) as err:
        read_p2_dataset(tmp_path, "KGBD", 4)
    msg = str(err.value)
    assert str(bad) in msg and "\n" not in msg


def test_missing_dataset_folder_and_unknown_split(tmp_path):
    with pytest.raises(DatasetError, match="cagereid prepare"):
        read_p2_dataset(tmp_path, "BIWI", 6)
    _write(tmp_path, "BIWI", f=4)
    with pytest.raises(DatasetError, match="unknown P2 split"):
        read_p2_dataset(tmp_path, "BIWI", 4, splits=("train", "probe"))
    assert set(read_p2_dataset(tmp_path, "BIWI", 4, splits=("Still",))) == {"Still"}
    assert read_p2_split(tmp_path, "BIWI", 4, "train").n == 12
    assert read_p2_dataset(tmp_path / "BIWI", "BIWI", 4)["Walking"].n == 12  # Datasets/BIWI given: accepted


def test_metadata_is_optional(tmp_path):
    _write(tmp_path, "IAS", f=4)
    p2_files(tmp_path, "IAS", 4, "A")["meta"].unlink()
    a = read_p2_dataset(tmp_path, "IAS", 4)["A"]
    assert (a.recording == -1).all() and (a.start == -1).all()


def test_rewrite_is_byte_identical(tmp_path):
    _write(tmp_path / "one", "KS20")
    _write(tmp_path / "two", "KS20")
    for f1 in sorted((tmp_path / "one").rglob("*.np*")):
        f2 = tmp_path / "two" / f1.relative_to(tmp_path / "one")
        assert hashlib.sha256(f1.read_bytes()).digest() == hashlib.sha256(f2.read_bytes()).digest(), f1.name


# --- protocol tables ------------------------------------------------------------------------------
def test_p2_gallery_probe_pairs():
    assert P.p2_gallery_probe_pairs("BIWI") == [("BIWI-Walking", "train", "Walking"), ("BIWI-Still", "train", "Still")]
    assert P.p2_gallery_probe_pairs("ias") == [("IAS-A", "train", "A"), ("IAS-B", "train", "B")]
    assert P.p2_gallery_probe_pairs("KGBD") == [("KGBD", "gallery", "probe")]
    assert P.p2_gallery_probe_pairs("KS20") == [("KS20", "gallery", "probe")]
    for ds in P.P2_PROTOCOLS:
        for _, g, p in P.p2_gallery_probe_pairs(ds):
            assert g in P.P2_SPLITS[ds] and p in P.P2_SPLITS[ds]
    with pytest.raises(ValueError, match="CASIA_B"):
        P.p2_gallery_probe_pairs("CASIA_B")


def test_cage_and_ucalgary_protocols():
    cve = P.protocols("CASIA_B", "cage")
    assert [p.view for p in cve] == list(range(11)) and cve[3].name == "CASIA_B-CVE-54deg"
    cme = {p.name: p for p in P.protocols("CASIA_B_match", "cage")}
    assert set(cme) == {"CASIA_B-CME-nm.nm", "CASIA_B-CME-bg.bg", "CASIA_B-CME-cl.cl", "CASIA_B-CME-cl.nm",
                        "CASIA_B-CME-bg.nm"}
    assert (cme["CASIA_B-CME-cl.nm"].probe, cme["CASIA_B-CME-cl.nm"].gallery) == ("cl", "nm")
    assert cme["CASIA_B-CME-nm.nm"].exclude_same_recording and not cme["CASIA_B-CME-bg.nm"].exclude_same_recording
    uc = P.protocols("UCALGARY", "ucalgary")
    assert [(p.runs_gallery, p.runs_probe) for p in uc] == [((1,), (2,)), ((1,), (3, 4, 5, 6))]
    for ds, pairs in P.CAGE_PROTOCOLS.items():
        for p in pairs:
            assert p.gallery in P.CAGE_SPLITS[ds] and p.probe in P.CAGE_SPLITS[ds]
    with pytest.raises(ValueError, match="unknown dataset"):
        P.protocols("NTU", "p2")
