"""UCalgary gait CSV reader: real development data (skipped when absent) and hand-written quirky files."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from offline.datasets.base import DatasetError
from offline.datasets.ucalgary import (
    load_ucalgary, read_geometric_positions, runs_label, ucalgary_windows,
)

HEADER = ("Foot Left X, Y, Z, Ankle Left X, Y, Z, Knee Left X, Y, Z, Hip Left X, Y, Z, Foot Right X, Y, Z, "
          "Ankle Right X, Y, Z, Knee Right X, Y, Z, Hip Right X, Y, Z,Spine Base X, Y, Z,Spine Mid X, Y, Z , "
          "Neck X, Y, Z, Head X, Y, Z , ShouldL X, Y, Z, ShouldR X, Y, Z,WristLeft X,Y,Z,WristRight X,Y,Z,"
          "ElbowLeft X,Y,Z,ElbowRight X,Y,Z,SholdD,LSHD,RSHD,HIPD,LWristSpineD,RWristSpineD, ShoulDX, HipDX ")
# A spelling variant: other names, no spaces, and a trailing comma.
HEADER_VARIANT = ",".join(f"J{j}_X,Y,Z" for j in range(18)) + ",D1,D2,D3,D4,D5,D6,D7,"


def walk(T: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    joints = rng.normal(scale=0.3, size=(T, 18, 3))
    joints[..., 2] += np.linspace(4.3, 1.5, T)[:, None]
    return np.round(joints, 6)


def write_csv(path: Path, joints: np.ndarray, header: str | None = HEADER, trailing: str = "",
              extra: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [] if header is None else [header]
    for frame in joints:
        values = [f"{v:.6g}" for v in frame.reshape(-1)] + ["0.25"] * extra
        lines.append(",".join(values) + trailing)
    path.write_text("\n".join(lines) + "\n")
    return path


def csv_path(root: Path, subject: int, run: int, cond: str = "N") -> Path:
    return root / f"sub{subject}" / f"Run{run}" / f"subject{subject}_Seq_{run}_Gen_M_GeometricPositions_{cond}.csv"


# --- real data ------------------------------------------------------------------------------------

def test_real_development_subjects(ucalgary_root):
    data = load_ucalgary(ucalgary_root)
    folders = sorted(int(p.name[3:]) for p in ucalgary_root.glob("sub*"))
    assert folders == list(range(1, 15))
    # sub10 is a byte copy of sub4: dropped entirely; 13 distinct people remain.
    assert data.subjects == [s for s in range(1, 15) if s != 10]
    assert len(data.recordings) == 13 * 6 - 1  # sub6/Run6 == sub6/Run5 counted once
    assert data.runs(6) == [1, 2, 3, 4, 5]
    dup = {(d.parent.parent.name, d.parent.name, o.parent.parent.name, o.parent.name) for d, o in data.duplicates}
    assert dup == {("sub10", f"Run{r}", "sub4", f"Run{r}") for r in range(1, 7)} | {("sub6", "Run6", "sub6", "Run5")}
    assert data.skipped == []  # no empty/odd skeleton file in the development subset
    assert sorted(p.parent.parent.name for p, _ in data.ignored) == ["sub1", "sub2", "sub3", "sub4", "sub5"]
    for rec in data.recordings:
        assert rec.joints.shape == (120, 18, 3) and rec.joints.dtype == np.float64
        assert rec.condition == {1: "N", 2: "N", 3: "AR", 4: "AR", 5: "AL", 6: "AL"}[rec.run]
        assert np.isfinite(rec.joints).all() and not (rec.joints == 0).all(axis=-1).any()
    z = data.get(1, 1).joints[:, 8, 2]  # SpineBase depth: walking towards the camera
    assert 3.5 < z[0] < 5.0 and z[-1] < z[0] - 1.0
    # Lost joints (exactly 0,0,0) in sub5 and sub11 are interpolated and reported.
    assert {p.parent.parent.name for p, _ in data.repaired} == {"sub5", "sub11"}
    text = data.summary()
    assert "13 people" in text and "sub10" in text


def test_real_run7_and_windows(ucalgary_root):
    data = load_ucalgary(ucalgary_root, include_run7=True)
    assert sorted(r.subject for r in data.recordings if r.run == 7) == [1, 2, 3, 4, 5]
    assert {r.condition for r in data.recordings if r.run == 7} == {"OA"}
    ws = ucalgary_windows(load_ucalgary(ucalgary_root), f=6, runs=[1])
    assert ws.split == "run1" and ws.layout == "ucalgary18" and ws.dataset == "UCALGARY"
    assert ws.n == 13 * (120 - 6 + 1)
    assert set(np.unique(ws.pids)) == set(range(1, 15)) - {10}


# --- hand-written files ---------------------------------------------------------------------------

def test_header_variants_trailing_commas_and_no_header(tmp_path):
    joints = walk()
    a = read_geometric_positions(write_csv(tmp_path / "a.csv", joints))
    b = read_geometric_positions(write_csv(tmp_path / "b.csv", joints, header=HEADER_VARIANT, trailing=","))
    c = read_geometric_positions(write_csv(tmp_path / "c.csv", joints, header=None, extra=7))
    for out in (a, b, c):
        assert out.shape == (30, 18, 3)
        assert np.allclose(out, joints)
    assert np.allclose(a[:, 0], joints[:, 0])  # FootLeft is the first triple, mapped by position


def test_blank_lines_are_tolerated(tmp_path):
    path = write_csv(tmp_path / "a.csv", walk(10))
    path.write_text(path.read_text().replace("\n", "\n\n", 3) + "\n\n")
    assert read_geometric_positions(path).shape == (10, 18, 3)


@pytest.mark.parametrize("content,reason", [
    ("", "empty file"),
    ("\n , ,\n", "empty file"),
    (HEADER + "\n", "no frames"),
    ("Foot X, Y, Z, Knee X, Y, Z\n1,2,3,4,5,6\n", "header names 2 joints"),
])
def test_bad_files_raise_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "subject1_Seq_1_Gen_F_GeometricPositions_N.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match=reason) as info:
        read_geometric_positions(path)
    assert path.name in str(info.value)


def test_short_row_and_non_number(tmp_path):
    path = write_csv(tmp_path / "short.csv", walk(5))
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + [",".join(lines[3].split(",")[:40])] + lines[4:]))
    with pytest.raises(DatasetError, match="line 4 has 40 values"):
        read_geometric_positions(path)
    path.write_text("\n".join(lines[:2] + [lines[2].replace(lines[2].split(",")[5], "abc", 1)] + lines[3:]))
    with pytest.raises(DatasetError, match="non-number"):
        read_geometric_positions(path)


def test_loader_skips_reports_and_deduplicates(tmp_path):
    root = tmp_path / "ucalgary_gait"
    for s in (1, 2, 3):
        for r in (1, 2, 3, 7):
            write_csv(csv_path(root, s, r, {1: "N", 2: "N", 3: "AR", 7: "OA"}[r]), walk(20, seed=10 * s + r))
    csv_path(root, 2, 3, "AR").write_text("")  # the empty file of the full dataset
    write_csv(csv_path(root, 3, 2), walk(20, seed=31), header=HEADER_VARIANT, trailing=",")  # variant header
    shutil.rmtree(root / "sub3" / "Run1")
    (root / "sub3" / "Run1").mkdir()  # a run folder without a skeleton file
    for r in (1, 2, 3):  # sub4 is a byte copy of sub1
        dst = csv_path(root, 4, r)
        dst.parent.mkdir(parents=True)
        shutil.copyfile(csv_path(root, 1, r, {1: "N", 2: "N", 3: "AR"}[r]), dst)
    shutil.copyfile(csv_path(root, 2, 1), csv_path(root, 2, 2))  # sub2/Run2 == sub2/Run1
    (root / "notes").mkdir()

    data = load_ucalgary(root)
    assert data.subjects == [1, 2, 3]
    assert [(r.subject, r.run) for r in data.recordings] == [(1, 1), (1, 2), (1, 3), (2, 1), (3, 2), (3, 3)]
    skipped = {p.relative_to(root).parts[:2]: why for p, why in data.skipped}
    assert skipped[("sub2", "Run3")] == "empty file"
    assert "no *_GeometricPositions_*.csv" in skipped[("sub3", "Run1")]
    assert len(data.duplicates) == 4
    assert {(d.parent.parent.name, d.parent.name) for d, _ in data.duplicates} == {
        ("sub4", "Run1"), ("sub4", "Run2"), ("sub4", "Run3"), ("sub2", "Run2")}
    assert len(data.ignored) == 3
    assert data.get(1, 3).condition == "AR"
    assert np.allclose(data.get(3, 2).joints, walk(20, seed=31))
    assert len(load_ucalgary(root, include_run7=True).recordings) == 9


def test_zero_joints_interpolated_or_kept(tmp_path):
    joints = walk(10)
    joints[4, 7] = 0.0
    joints[5, 7] = 0.0
    path = write_csv(csv_path(tmp_path, 1, 1), joints)
    fixed = load_ucalgary(tmp_path)
    assert fixed.repaired == [(path, 2)]
    got = fixed.get(1, 1).joints
    assert np.allclose(got[4, 7], joints[3, 7] + (joints[6, 7] - joints[3, 7]) / 3, atol=1e-6)
    kept = load_ucalgary(tmp_path, zero_joints="keep")
    assert kept.repaired == [] and (kept.get(1, 1).joints[4, 7] == 0).all()


def test_missing_or_empty_root(tmp_path):
    with pytest.raises(DatasetError, match="missing folder"):
        load_ucalgary(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no readable UCalgary recording"):
        load_ucalgary(tmp_path)


def test_windows_metadata_stride_and_layout(tmp_path):
    for s in (2, 5):
        for r in (1, 3, 4):
            write_csv(csv_path(tmp_path, s, r, "N" if r == 1 else "AR"), walk(16, seed=s * 10 + r))
    data = load_ucalgary(tmp_path)
    ws = ucalgary_windows(data, f=4, runs=[3, 4], stride=2)
    per_rec = len(range(0, 16 - 4 + 1, 2))
    assert ws.n == 4 * per_rec and ws.split == "run3+4"
    assert ws.windows.shape == (ws.n, 4, 18, 3)
    assert list(np.unique(ws.recording)) == [203, 204, 503, 504]
    assert ws.pids.tolist() == [2] * (2 * per_rec) + [5] * (2 * per_rec)
    assert ws.start[:per_rec].tolist() == list(range(0, 13, 2))
    first = data.get(2, 3).joints
    assert np.array_equal(ws.windows[1], first[2:6])
    assert (ws.offset == 0).all()
    v1 = ucalgary_windows(data, f=4, runs=1, layout="kinect_v1")
    assert v1.windows.shape[2] == 20 and np.isfinite(v1.windows).all() and v1.layout == "kinect_v1"
    with pytest.raises(DatasetError, match="HandTip"):
        ucalgary_windows(data, f=4, runs=1, layout="kinect_v2")
    assert ucalgary_windows(data, f=4, runs=[2]).n == 0


def test_runs_label():
    assert runs_label([1]) == "run1"
    assert runs_label([3, 4, 5, 6]) == "run3-6"
    assert runs_label([1, 3]) == "run1+3"
