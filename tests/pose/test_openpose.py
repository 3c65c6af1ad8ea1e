"""OpenPose JSON: the documented format (hand-written files), our writer, the folder reader, real footage."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pose.openpose import (BODY25_JOINTS, COCO18_JOINTS, frame_json_name, read_frame_json, read_openpose_dir,
                           to_casia14, write_frame_json)
from pose.sources import SourceError

# --- hand-written files in OpenPose's documented --write_json format (doc/02_output.md) ---------------


def _person(flat):
    return {"person_id": [-1], "pose_keypoints_2d": flat, "face_keypoints_2d": [], "hand_left_keypoints_2d": [],
            "hand_right_keypoints_2d": [], "pose_keypoints_3d": [], "face_keypoints_3d": [],
            "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []}


def _body25(x0: float, y0: float, missing=()):
    """A standing person: joint j at (x0 + 3j, y0 + 10j), confidence 0.5 + j/100; ``missing`` as 0,0,0."""
    flat = []
    for j in range(25):
        flat += [0.0, 0.0, 0.0] if j in missing else [x0 + 3 * j, y0 + 10 * j, 0.5 + j / 100]
    return flat


def test_hand_written_body25_two_people_with_missing_joints(tmp_path):
    p = tmp_path / "clip_000000000007_keypoints.json"
    p.write_text(json.dumps({"version": 1.3, "people": [_person(_body25(100, 50, missing=(4, 19))),
                                                        _person(_body25(400, 60))]}))
    people = read_frame_json(p)
    assert len(people) == 2
    kp, conf = people[0]
    assert kp.shape == (25, 2) and conf.shape == (25,)
    assert np.isnan(kp[4]).all() and conf[4] == 0 and np.isnan(kp[19]).all()
    assert kp[8].tolist() == [124.0, 130.0] and conf[8] == pytest.approx(0.58)
    # casia14: head = Nose (0), R-wrist = RWrist (4) -> missing, R-hip = RHip (9), L-ankle = LAnkle (14)
    out, valid = to_casia14(kp, conf, "body25")
    assert out.shape == (14, 2)
    assert out[0].tolist() == [100.0, 50.0]
    assert not valid[4] and np.isnan(out[4]).all()
    assert out[8].tolist() == kp[9].tolist() and out[13].tolist() == kp[14].tolist()


def test_hand_written_coco18(tmp_path):
    flat = []
    for j in range(18):
        flat += [10.0 * j, 5.0 * j, 0.9]
    p = tmp_path / "a_000000000000_keypoints.json"
    p.write_text(json.dumps({"version": 1.1, "people": [_person(flat)]}))
    (kp, conf), = read_frame_json(p)
    assert kp.shape == (18, 2)
    out, valid = to_casia14(kp, conf, "coco18")
    assert valid.all()
    # COCO-18 RHip is index 8, LAnkle 13: casia14 R-hip (8) and L-ankle (13) keep their index
    assert out[8].tolist() == [80.0, 40.0] and out[13].tolist() == [130.0, 65.0]
    assert len(BODY25_JOINTS) == 25 and len(COCO18_JOINTS) == 18


def test_empty_frame_and_errors_name_the_file(tmp_path):
    empty = tmp_path / "v_000000000000_keypoints.json"
    empty.write_text(json.dumps({"version": 1.3, "people": []}))
    assert read_frame_json(empty) == []
    bad = tmp_path / "v_000000000001_keypoints.json"
    bad.write_text("{not json")
    with pytest.raises(SourceError, match="v_000000000001_keypoints.json"):
        read_frame_json(bad)
    odd = tmp_path / "v_000000000002_keypoints.json"
    odd.write_text(json.dumps({"people": [_person([1.0, 2.0, 0.5] * 20)]}))
    with pytest.raises(SourceError, match="60 pose values"):
        read_frame_json(odd)
    (tmp_path / "nothing_here").mkdir()
    with pytest.raises(SourceError, match="no \\*_keypoints.json"):
        read_openpose_dir(tmp_path / "nothing_here")


def test_write_frame_json_is_openpose_format_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 600, (25, 2))
    conf = rng.uniform(0.1, 1.0, 25)
    conf[3] = 0.0  # not detected -> 0, 0, 0
    path = write_frame_json(tmp_path / frame_json_name("walk", 12), [(kp, conf), (kp + 50, conf)])
    assert path.name == "walk_000000000012_keypoints.json"
    doc = json.loads(path.read_text())
    assert doc["version"] == 1.3 and len(doc["people"]) == 2
    person = doc["people"][0]
    assert person["person_id"] == [-1] and len(person["pose_keypoints_2d"]) == 75
    for key in ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d", "pose_keypoints_3d"):
        assert person[key] == []
    assert person["pose_keypoints_2d"][9:12] == [0, 0, 0]
    (kp2, conf2), _ = read_frame_json(path)
    ok = conf > 0
    np.testing.assert_allclose(kp2[ok], kp[ok], atol=1e-3)
    np.testing.assert_allclose(conf2[ok], conf[ok], atol=1e-3)
    assert np.isnan(kp2[3]).all()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # atomic: no temp file left


def test_folder_reader_follows_two_people_and_picks_the_main_one(tmp_path):
    # person A walks right in every frame; person B walks left and is absent in frames 5-7 and after 15
    for t in range(20):
        people = [(np.c_[np.linspace(100, 130, 25) + 6 * t, np.linspace(100, 400, 25)], np.ones(25))]
        if t < 15 and not 5 <= t <= 7:
            people.append((np.c_[np.linspace(900, 930, 25) - 6 * t, np.linspace(120, 420, 25)], np.full(25, 0.8)))
        write_frame_json(tmp_path / frame_json_name("two", t), people[::-1] if t % 2 else people)
    seq = read_openpose_dir(tmp_path)
    assert seq.format == "body25" and seq.n_frames == 20
    assert len(seq.tracks) == 2
    main = seq.main_track()
    assert main.n_detected == 20 and main.frames.tolist() == list(range(20))
    assert np.all(np.diff(main.keypoints[:, 0, 0]) > 0)  # A, moving right, in every frame: never swapped
    other = [t for t in seq.tracks if t is not main][0]
    assert other.frames.tolist() == list(range(15)) and other.n_detected == 12  # gap kept as a gap
    assert np.isnan(other.keypoints[5:8]).all() and (other.confidence[5:8] == 0).all()
    xy, valid = main.casia14()
    assert xy.shape == (20, 14, 2) and valid.all()


# --- real footage: extract --format openpose writes JSON this reader understands -----------------------

def test_extract_openpose_json_from_real_video(shared_data, tmp_path):
    video = shared_data / "video" / "openpose_walk.avi"
    if not video.is_file():
        pytest.skip(f"{video} is absent")
    from pose.extract import extract

    out = tmp_path / "op"
    extract(video, openpose_dir=out, layouts=("casia14",), progress=False, max_frames=12)
    files = sorted(out.glob("*_keypoints.json"))
    assert len(files) >= 10
    seq = read_openpose_dir(out)
    assert seq.format == "body25"
    main = seq.main_track()
    assert main.n_detected >= 10
    xy, valid = main.casia14()
    assert valid.mean() > 0.8
    # a standing/walking person: head above the hips above the ankles (image y grows downwards)
    ok = valid[:, [0, 8, 10]].all(1)
    assert (xy[ok, 0, 1] < xy[ok, 8, 1]).all() and (xy[ok, 8, 1] < xy[ok, 10, 1]).all()
    assert 0 <= np.nanmin(xy[..., 0]) and np.nanmax(xy[..., 0]) <= 1280
