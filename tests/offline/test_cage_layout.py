"""CAGE pre-processed layout: exact file names, bit-for-bit round trip, and every validation error."""
from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest

from offline.datasets.base import DatasetError
from offline.datasets.cage_layout import (
    DATASET_LAYOUT, DatasetWarning, read_cage_dataset, split_files, split_names, write_cage_dataset,
)
from offline.datasets.legacy import load_ids_dict, save_ids_dict

CASES = ([(ds, f, None) for ds in ("BIWI", "IAS", "KGBD", "KS20") for f in (4, 6, 8, 10)]
         + [("KS20", 6, 2), ("CASIA_B", 20, 0), ("CASIA_B", 20, 10), ("CASIA_B_match", 50, None)])


def assert_same(a, b):
    assert a.windows.dtype == np.float64
    assert np.array_equal(a.windows, b.windows)
    for name in ("pids", "recording", "offset", "start"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert (a.dataset, a.split, a.layout) == (b.dataset, b.split, b.layout)


@pytest.mark.parametrize("dataset,f,view", CASES)
def test_round_trip_bit_for_bit(cage_dataset, dataset, f, view):
    root, splits = cage_dataset(dataset, f=f, view=view, n=12)
    back = read_cage_dataset(root, dataset, f, view=view)
    assert list(back) == list(splits)
    for split, ws in splits.items():
        assert_same(back[split], ws)
        assert back[split].J == DATASET_LAYOUT[dataset][1]


def test_original_file_names(cage_dataset):
    root, _ = cage_dataset("BIWI", f=6)
    train = root / "BIWI" / "6" / "BIWI_train_npy_data"
    test = root / "BIWI" / "6" / "BIWI_test_npy_data"
    assert {p.name for p in train.iterdir()} == (
        {f"{k}_{c}_BIWI_6.npy" for k in ("source", "target") for c in "xyz"}
        | {"ids_BIWI_6.npy", "frame_id_BIWI_6.npy", "meta_BIWI_6.npz"})
    assert {p.name for p in test.iterdir()} == (
        {f"t_{k}_{c}_BIWI_6.npy" for k in ("source", "target") for c in "xyz"}
        | {"ids_BIWI_6.npy", "frame_id_BIWI_6.npy", "meta_BIWI_6.npz"})
    assert (root / "BIWI" / "6" / "BIWI_test_Still_npy_data" / "t_source_x_BIWI_6.npy").is_file()


def test_ias_tags_and_casia_folders(cage_dataset):
    root, _ = cage_dataset("IAS", f=4)
    names = {p.name for p in (root / "IAS" / "4" / "IAS_test_npy_data").iterdir()}
    assert {"t_source_x_IAS-A_4.npy", "t_target_z_IAS-B_4.npy", "ids_IAS-A_4.npy", "ids_IAS-B_4.npy"} <= names
    root, _ = cage_dataset("CASIA_B_match", f=50)
    base = root / "CASIA_B_match" / "50"
    for cond in ("nm", "bg", "cl"):
        assert (base / "CASIA_B_test_npy_data" / cond / "t_source_x_CASIA_B_50.npy").is_file()
    assert (base / "CASIA_B_train_npy_data" / "source_y_CASIA_B_50.npy").is_file()
    assert (base / "CASIA_B_test_npy_data" / "t_target_z_CASIA_B_50.npy").is_file()  # test_all
    root, _ = cage_dataset("KS20", f=6, view=3)
    assert (root / "KS20" / "6" / "view_3" / "KS20_test_npy_data" / "t_source_x_KS20_6.npy").is_file()


def test_file_contents_follow_the_spec(cage_dataset):
    root, splits = cage_dataset("KGBD", f=8)
    ws = splits["train"]
    files = split_files(root, "KGBD", 8, "train")
    src = np.load(files.source("y"), allow_pickle=False)
    tgt = np.load(files.target("y"), allow_pickle=False)
    assert src.dtype == np.float64 and src.shape == (ws.n * 8, 20)
    assert np.array_equal(src.reshape(ws.n, 8, 20), ws.windows[..., 1])
    assert np.array_equal(tgt.reshape(ws.n, 8, 20), ws.windows[:, ::-1, :, 1])
    assert load_ids_dict(files.ids) == ws.ids_dict()
    frame_id = np.load(files.frame_id, allow_pickle=False)
    assert frame_id.dtype == np.int64 and np.array_equal(frame_id, ws.pids)


def test_writes_are_deterministic(tmp_path, make_windowset):
    splits = {s: make_windowset("KGBD", s, n=10) for s in split_names("KGBD")}
    digests = []
    for k in range(2):
        write_cage_dataset(tmp_path / str(k), "KGBD", 6, splits)
        digests.append(sorted((p.relative_to(tmp_path / str(k)).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
                              for p in (tmp_path / str(k)).rglob("*") if p.is_file()))
    assert digests[0] == digests[1]
    assert not list(tmp_path.rglob("*.tmp"))


def test_root_may_be_the_dataset_folder(cage_dataset):
    root, splits = cage_dataset("KGBD", f=4)
    back = read_cage_dataset(root / "KGBD", "kgbd", 4, splits=["test"])
    assert list(back) == ["test"]
    assert_same(back["test"], splits["test"])


def test_meta_absent_gives_minus_one(cage_dataset):
    root, splits = cage_dataset("BIWI", f=6)
    split_files(root, "BIWI", 6, "Walking").meta.unlink()
    back = read_cage_dataset(root, "BIWI", 6)
    assert (back["Walking"].recording == -1).all() and (back["Walking"].start == -1).all()
    assert np.array_equal(back["Walking"].windows, splits["Walking"].windows)


def test_optional_still_split(cage_dataset):
    import shutil

    root, _ = cage_dataset("BIWI", f=6)
    shutil.rmtree(split_files(root, "BIWI", 6, "Still").folder)
    assert list(read_cage_dataset(root, "BIWI", 6)) == ["train", "Walking"]
    with pytest.raises(DatasetError, match="BIWI_test_Still_npy_data"):
        read_cage_dataset(root, "BIWI", 6, splits=["Still"])


# --- corruption: each one a DatasetError naming the file -----------------------------------------

def _corrupt(files, how):
    """Damage one file of a written split; returns the file name the error must name."""
    n = len(np.load(files.frame_id, allow_pickle=False))
    f = files.f
    if how == "missing_source":
        files.source("y").unlink()
        return files.source("y").name
    if how == "missing_ids":
        files.ids.unlink()
        return files.ids.name
    if how == "garbage":
        files.source("z").write_bytes(b"not an npy file")
        return files.source("z").name
    if how == "rows_not_multiple":
        a = np.load(files.source("x"), allow_pickle=False)
        np.save(files.source("x"), a[:-1])
        return files.source("x").name
    if how == "wrong_J":
        a = np.load(files.source("x"), allow_pickle=False)
        np.save(files.source("x"), a[:, :-1])
        return files.source("x").name
    if how == "one_dim":
        np.save(files.source("x"), np.zeros(n * f))
        return files.source("x").name
    if how == "xyz_mismatch":
        a = np.load(files.source("y"), allow_pickle=False)
        np.save(files.source("y"), a[:-f])
        return files.source("y").name
    if how == "nan":
        a = np.load(files.source("z"), allow_pickle=False)
        a[3, 2] = np.nan
        np.save(files.source("z"), a)
        return files.source("z").name
    if how == "inf_target":
        a = np.load(files.target("x"), allow_pickle=False)
        a[0, 0] = np.inf
        np.save(files.target("x"), a)
        return files.target("x").name
    if how == "target_not_reversed":
        np.save(files.target("y"), np.load(files.source("y"), allow_pickle=False))
        return files.target("y").name
    if how == "target_shape":
        a = np.load(files.target("x"), allow_pickle=False)
        np.save(files.target("x"), a[:-f])
        return files.target("x").name
    ids = load_ids_dict(files.ids)
    first = next(iter(ids))
    if how == "ids_out_of_range":
        ids[first] = ids[first] + [n + 5]
    elif how == "ids_overlap":
        other = list(ids)[1]
        ids[first] = ids[first] + [ids[other][0]]
    elif how == "ids_not_covering":
        ids[first] = ids[first][:-1]
    elif how == "ids_not_a_dict":
        np.save(files.ids, np.arange(3))
        return files.ids.name
    elif how == "frame_id_disagrees":
        fid = np.load(files.frame_id, allow_pickle=False)
        fid[0] += 1000
        np.save(files.frame_id, fid)
        return files.frame_id.name
    elif how == "frame_id_shape":
        np.save(files.frame_id, np.zeros(n + 1, dtype=np.int64))
        return files.frame_id.name
    elif how == "meta_shape":
        np.savez(files.meta, recording=np.zeros(n + 2, np.int64), offset=np.zeros(n, np.int64),
                 start=np.zeros(n, np.int64))
        return files.meta.name
    else:
        raise AssertionError(how)
    save_ids_dict(files.ids, ids)
    return files.ids.name


CORRUPTIONS = ["missing_source", "missing_ids", "garbage", "rows_not_multiple", "wrong_J", "one_dim",
               "xyz_mismatch", "nan", "inf_target", "target_not_reversed", "target_shape", "ids_out_of_range",
               "ids_overlap", "ids_not_covering", "ids_not_a_dict", "frame_id_disagrees", "frame_id_shape",
               "meta_shape"]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_corruption_is_a_one_line_error_naming_the_file(cage_dataset, how):
    root, _ = cage_dataset("IAS", f=6)
    name = _corrupt(split_files(root, "IAS", 6, "B"), how)
    with pytest.raises(DatasetError) as info:
        read_cage_dataset(root, "IAS", 6)
    msg = str(info.value)
    assert name in msg and "IAS_test_npy_data" in msg
    assert "\n" not in msg


def test_missing_dataset_folder_and_split_folder(tmp_path, cage_dataset):
    with pytest.raises(DatasetError, match="missing folder"):
        read_cage_dataset(tmp_path, "BIWI", 6)
    root, _ = cage_dataset("KGBD", f=6)
    with pytest.raises(DatasetError, match="KGBD/8"):
        read_cage_dataset(root, "KGBD", 8)
    import shutil

    shutil.rmtree(split_files(root, "KGBD", 6, "test").folder)
    with pytest.raises(DatasetError, match="KGBD_test_npy_data: missing folder"):
        read_cage_dataset(root, "KGBD", 6)


def test_lenient_mode_derives_target(cage_dataset):
    root, splits = cage_dataset("KS20", f=6)
    files = split_files(root, "KS20", 6, "train")
    _corrupt(files, "target_not_reversed")
    files.target("z").unlink()
    with pytest.warns(DatasetWarning):
        back = read_cage_dataset(root, "KS20", 6, strict=False)
    assert_same(back["train"], splits["train"])
    assert len(back["train"].meta["warnings"]) == 2
    with pytest.raises(DatasetError, match="not the time-reversed"):
        read_cage_dataset(root, "KS20", 6)


def test_lenient_mode_still_rejects_nan(cage_dataset):
    root, _ = cage_dataset("KGBD", f=6)
    _corrupt(split_files(root, "KGBD", 6, "train"), "nan")
    with warnings.catch_warnings(), pytest.raises(DatasetError, match="NaN"):
        read_cage_dataset(root, "KGBD", 6, strict=False)


def test_views_are_checked(cage_dataset, tmp_path):
    with pytest.raises(DatasetError, match="view 0..10"):
        read_cage_dataset(tmp_path, "CASIA_B", 20)
    with pytest.raises(DatasetError, match="KS20 view"):
        read_cage_dataset(tmp_path, "KS20", 6, view=7)
    with pytest.raises(DatasetError, match="no views"):
        read_cage_dataset(tmp_path, "BIWI", 6, view=1)
    with pytest.raises(DatasetError, match="unknown dataset"):
        read_cage_dataset(tmp_path, "NTU", 6)


def test_writer_refuses_bad_input(tmp_path, make_windowset):
    good = {s: make_windowset("BIWI", s) for s in ("train", "Walking")}
    with pytest.raises(DatasetError, match="incomplete"):
        write_cage_dataset(tmp_path, "BIWI", 6, {"train": good["train"]})
    with pytest.raises(DatasetError, match="no split"):
        write_cage_dataset(tmp_path, "BIWI", 6, {**good, "A": good["train"]})
    with pytest.raises(DatasetError, match="J=25"):
        write_cage_dataset(tmp_path, "KS20", 6, {"train": good["train"], "test": good["Walking"]})
    with pytest.raises(DatasetError, match="f=8"):
        write_cage_dataset(tmp_path, "BIWI", 8, good)
    bad = make_windowset("BIWI", "Walking")
    bad.windows[0, 0, 0, 0] = np.nan
    with pytest.raises(DatasetError, match="NaN"):
        write_cage_dataset(tmp_path, "BIWI", 6, {"train": good["train"], "Walking": bad})


def test_legacy_ids_loader_refuses_code(tmp_path):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    path = tmp_path / "ids_BIWI_6.npy"
    arr = np.empty((), dtype=object)
    arr[()] = {1: Evil()}
    with open(path, "wb") as fp:  # the bytes np.save writes for an object array: .npy header + pickle
        np.lib.format.write_array_header_1_0(fp, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(arr, fp, protocol=3)
    with pytest.raises(DatasetError, match="ids_BIWI_6.npy.*refusing"):
        load_ids_dict(path)
