"""Video re-ID manifests (issue #14): CSV and YAML, CASIA-B names, one-line errors, windows of a clip."""
import dataclasses

import numpy as np
import pytest

from offline.video_manifest import ManifestError, clip_windows, read_manifest


@pytest.fixture()
def clips(tmp_path, tracks_file):
    (tmp_path / "walks").mkdir()
    return {name: tracks_file(tmp_path / "walks" / f"{name}.npz", pid, hide_left_arm=(name == "bo_2"))
            for name, pid in (("ana_1", 0), ("ana_2", 0), ("bo_1", 1), ("bo_2", 1))}


def test_csv_manifest_reads_and_its_clips_give_windows(tmp_path, clips):
    m = tmp_path / "set.csv"
    m.write_text("clip,person,role,track\nwalks/ana_1.npz,ana,gallery,\nwalks/ana_2.npz,ana,probe,1\n"
                 "# a comment line\nwalks/bo_1.npz,bo,Gallery,\nwalks/bo_2.npz,bo,probe,\n")
    entries = read_manifest(m)
    assert [(e.clip.name, e.person, e.role, e.track) for e in entries] == [
        ("ana_1.npz", "ana", "gallery", None), ("ana_2.npz", "ana", "probe", 1),
        ("bo_1.npz", "bo", "gallery", None), ("bo_2.npz", "bo", "probe", None)]
    w = clip_windows(entries[3], "kinect_v1", f=6, stride=1)  # left arm hidden: MediaPipe's estimate is used
    assert w.shape == (55, 6, 20, 3) and np.isfinite(w).all()
    w = clip_windows(entries[3], "kinect_v1", f=6, stride=1, min_visibility=0.5)  # dropped, then filled
    assert w.shape == (55, 6, 20, 3) and np.isfinite(w).all()


def test_yaml_manifest_and_casia_b_names_parse_by_themselves(tmp_path, tracks_file):
    (tmp_path / "c").mkdir()
    for name, pid in (("001-nm-01-090", 0), ("001-bg-02-090", 0), ("002-nm-04-090", 1), ("002-cl-01-072", 1)):
        tracks_file(tmp_path / "c" / f"{name}.npz", pid, frames=10)
    m = tmp_path / "casia.yaml"
    m.write_text("clips:\n" + "".join(f"  - clip: c/{n}.npz\n" for n in
                                      ("001-nm-01-090", "001-bg-02-090", "002-nm-04-090", "002-cl-01-072")))
    got = [(e.person, e.role, e.view) for e in read_manifest(m)]
    assert got == [("001", "gallery", 90), ("001", "probe", 90), ("002", "gallery", 90), ("002", "probe", 72)]


def test_part_cuts_one_walk_into_a_gallery_half_and_a_probe_half(tmp_path, clips):
    """The same-walk check: one track, its first half in the gallery and its second half as the probe."""
    m = tmp_path / "halves.csv"
    m.write_text("clip,person,role,track,part\nwalks/ana_1.npz,ana,gallery,,first\nwalks/ana_1.npz,ana,probe,,second\n"
                 "walks/bo_1.npz,bo,gallery,,FIRST\nwalks/bo_1.npz,bo,probe,,second\n")
    entries = read_manifest(m)
    assert [e.part for e in entries] == ["first", "second", "first", "second"]
    whole = clip_windows(dataclasses.replace(entries[0], part="all"), "kinect_v1", f=6, stride=1)
    first, second = (clip_windows(e, "kinect_v1", f=6, stride=1) for e in entries[:2])
    assert len(first) + len(second) == len(whole) - 5  # 60 frames: 55 windows; halves of 30: 25 + 25
    np.testing.assert_array_equal(first, whole[:len(first)])  # the first half's windows, no window across the cut
    np.testing.assert_array_equal(second, whole[-len(second):])
    m.write_text("clip,person,role,part\nwalks/ana_1.npz,ana,gallery,middle\nwalks/bo_1.npz,bo,probe,\n")
    with pytest.raises(ManifestError, match=r"halves.csv:2: .*unknown part 'middle' \(use all, first or second\)"):
        read_manifest(m)


@pytest.mark.parametrize("body, message", [
    ("clip,person,role\nwalks/ana_1.npz,ana,gallery\nwalks/nope.npz,bo,probe\n", r"set.csv:3: walks/nope.npz: no such file"),
    ("clip,person,role\nwalks/ana_1.npz,ana,gallery\nwalks/bo_1.npz,bo,query\n", r"set.csv:3: .*unknown role 'query'"),
    ("clip,person,role\nwalks/ana_1.npz,ana,gallery\nwalks/ana_2.npz,ana,probe\n", r"only one person \(ana\)"),
    ("clip,person,role\nwalks/ana_1.npz,ana,gallery\nwalks/bo_1.npz,bo,gallery\n", r"no probe clip"),
    ("file,who\nwalks/ana_1.npz,ana\n", r"header line must name the columns"),
    ("clip,person,role\nwalks/ana_1.npz,,gallery\n", r"no person"),
])
def test_a_bad_manifest_is_a_one_line_error(tmp_path, clips, body, message):
    m = tmp_path / "set.csv"
    m.write_text(body)
    with pytest.raises(ManifestError, match=message) as err:
        read_manifest(m)
    assert "\n" not in str(err.value) and ManifestError.user_error


def test_missing_manifest_and_wrong_kind(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "none.csv")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ManifestError, match=r"\.csv or \.yaml"):
        read_manifest(tmp_path / "m.txt")


def test_cagereid_evaluate_tracks_writes_the_report_and_bad_manifests_are_one_line(tmp_path, clips, capsys):
    from cagereid.cli import main

    m = tmp_path / "set.csv"
    m.write_text("clip,person,role\nwalks/ana_1.npz,ana,gallery\nwalks/bo_1.npz,bo,gallery\n"
                 "walks/ana_2.npz,ana,probe\nwalks/bo_2.npz,bo,probe\n")
    assert main(["evaluate", "--tracks", str(m), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    for method in ("CAGEs", "raw-kNN", "D13-kNN"):
        assert f"| {method} |" in out
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "probe sequence" in out and "missing joints" in report
    assert any(p.suffix == ".png" and "cmc" in p.name.lower() for p in (tmp_path / "rep").iterdir())
    m.write_text("clip,person,role\nwalks/ana_1.npz,ana,gallery\nwalks/ana_2.npz,ana,probe\n")
    assert main(["evaluate", "--tracks", str(m), "--out", str(tmp_path / "rep2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "only one person" in err and err.count("\n") == 1


def test_evaluate_tracks_applies_the_embedding_and_retrieval_overrides(tmp_path, clips, monkeypatch):
    """--readout/--bone-weight/--walk-pooling/--gallery-smoothing change the CAGE rows of `evaluate --tracks`
    (they were once silently ignored there) and are written into the report."""
    from offline.evaluate import Retrieval
    from offline.video_manifest import evaluate_manifest

    m = tmp_path / "set.csv"
    m.write_text("clip,person,role\nwalks/ana_1.npz,ana,gallery\nwalks/bo_1.npz,bo,gallery\n"
                 "walks/ana_2.npz,ana,probe\nwalks/bo_2.npz,bo,probe\n")

    def cage_p2(**kw):
        rows, meta = evaluate_manifest(m, methods=("cage",), protocols=("p2",), distances=("euclidean",), **kw)
        return {(r["level"], r.get("metric", "")): r for r in rows}, meta

    base, meta = cage_p2()
    assert meta["retrieval"] == "walk pooling mean, gallery smoothing 1.0"
    for kw in ({"bone_weight": 3.0}, {"readout": "ap"}):
        other, meta = cage_p2(**kw)
        assert other != base, kw
    # the retrieval settings reach the ranking of every method (on two people both rankings can be perfect, so
    # the numbers alone cannot tell)
    from offline import evaluate as E

    seen, real = [], E.evaluate_pair
    monkeypatch.setattr(E, "evaluate_pair", lambda *a, **k: seen.append(k["retrieval"]) or real(*a, **k))
    _, meta = cage_p2(retrieval=Retrieval("nearest", 0.5))
    assert seen == [Retrieval("nearest", 0.5)]
    assert meta["retrieval"] == "walk pooling nearest, gallery smoothing 0.5"
