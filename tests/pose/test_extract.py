"""End-to-end extraction: real videos (first frames, skipped without ../shared/data), the .npz format,
partial results from a broken video, OpenPose JSON, overlay, CLI errors."""
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose.estimator import EstimatorError, check_model, model_path
from pose.extract import FrameTracks, extract, iter_tracks, load_tracks
from pose.sources import SourceError

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
WALK = DATA / "video" / "openpose_walk.avi"
VTEST = DATA / "video" / "opencv_vtest.avi"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real video not available: {path} (../shared/data absent)")
    return path


@pytest.fixture(scope="module")
def walk_result(tmp_path_factory):
    _need(WALK)
    out = tmp_path_factory.mktemp("walk")
    res = extract(WALK, out_npz=out / "walk.npz", overlay=out / "walk.mp4", openpose_dir=out / "op",
                  max_frames=30, progress=False)
    return res, out


def test_walker_found_in_every_frame(walk_result):
    res, _ = walk_result
    assert res.n_frames == 30 and res.complete and res.error is None
    assert res.frames_with_pose >= 29  # >= 95%
    main = res.main_track()
    assert main.n_found >= 29
    assert res.stats["mode"] == "single"  # one large walker: the full-frame fast path, no detector
    k = main.joints["kinect_v1"][main.found]        # (T, 20, 3) metres, Kinect axes (y up), hip-centred
    v = main.valid["kinect_v1"][main.found]
    assert k.shape[1:] == (20, 3) and v.mean() > 0.8
    assert np.allclose(np.nanmean(k[:, 0], axis=0), 0.0, atol=0.05)  # HipCenter is the origin
    head, ankle = k[:, 3, 1], k[:, 14, 1]
    assert np.nanmedian(head - ankle) > 1.2  # y up: head well above the ankle (a standing adult)
    assert main.joints["casia14"].shape[1:] == (14, 3)
    # camera-space root estimate: in front of the camera, a few metres away, moving smoothly
    root = main.root[main.found]
    assert np.isfinite(root).all() and (root[:, 2] > 1.0).all() and (root[:, 2] < 20.0).all()
    assert np.abs(np.diff(root[:, 2])).max() < 0.5
    # invalid joints are NaN, never zero
    assert not np.any(main.joints["kinect_v1"][~main.valid["kinect_v1"]] == 0.0)


def test_npz_roundtrip_without_pickle(walk_result):
    res, out = walk_result
    with np.load(out / "walk.npz", allow_pickle=False) as z:
        keys = set(z.files)
        meta = json.loads(str(z["meta"]))
    assert meta["format"] == "cagereid-tracks" and meta["complete"] is True
    tid = res.main_track().track_id
    assert {f"track{tid}/kinect_v1", f"track{tid}/kinect_v1_valid", f"track{tid}/mediapipe33",
            f"track{tid}/found", f"track{tid}/timestamps"} <= keys
    back = load_tracks(out / "walk.npz")
    a, b = res.main_track(), back.track(tid)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.found, b.found)
    assert np.allclose(a.joints["kinect_v1"], b.joints["kinect_v1"], equal_nan=True)
    assert np.allclose(a.keypoints2d, b.keypoints2d, equal_nan=True)
    assert np.allclose(a.root, b.root, equal_nan=True)
    assert back.layouts == ("kinect_v1", "casia14") and back.source.endswith("openpose_walk.avi")


def test_overlay_and_openpose_outputs(walk_result):
    res, out = walk_result
    cap = cv2.VideoCapture(str(out / "walk.mp4"))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, img = cap.read()
    cap.release()
    assert ok and n == 30 and img.shape == (720, 1280, 3)
    files = sorted((out / "op").glob("*_keypoints.json"))
    assert len(files) == 30 and files[0].name == "openpose_walk_000000000000_keypoints.json"
    doc = json.loads(files[10].read_text())
    (person,) = doc["people"]
    kp = np.array(person["pose_keypoints_2d"]).reshape(25, 3)
    assert (kp[:, 2] > 0).sum() >= 15
    # BODY_25 MidHip (8) lies between the hips (9, 12), in pixels inside the frame
    assert np.allclose(kp[8, :2], 0.5 * (kp[9, :2] + kp[12, :2]), atol=2.0)
    assert 0 < kp[8, 0] < 1280 and 0 < kp[8, 1] < 720


def test_iter_tracks_live_api():
    _need(WALK)
    frames = list(iter_tracks(str(WALK), multi_person=False, layout="kinect_v1", max_frames=8))
    assert len(frames) == 8 and all(isinstance(f, FrameTracks) for f in frames)
    assert [f.frame.index for f in frames] == list(range(8))
    obs = [o for f in frames for o in f]
    assert len(obs) >= 7 and len({o.track_id for o in obs}) == 1
    o = obs[-1]
    assert o.joints.shape == (20, 3) and o.valid.shape == (20,) and o.keypoints2d.shape == (33, 2)
    assert o.visibility.shape == (33,) and o.bbox.shape == (4,) and o.layout == "kinect_v1"
    assert o.timestamp_s == pytest.approx(o.frame_index / 50.0)


@pytest.mark.slow
def test_several_small_pedestrians_get_several_tracks(tmp_path):
    _need(VTEST)
    res = extract(VTEST, out_npz=tmp_path / "v.npz", max_frames=20, progress=False, min_track_frames=3,
                  layouts=("kinect_v1",))
    assert res.stats["mode"] == "multi"  # full-frame pose finds nobody: the detector takes over
    assert len(res.tracks) >= 2
    for t in res.tracks:
        k = t.joints["kinect_v1"][t.found]
        # plausible skeletons: a person 1.2-2.2 m from head to ankles, hip-centred
        h = np.nanmedian(k[:, 3, 1] - 0.5 * (k[:, 14, 1] + k[:, 18, 1]))
        assert 1.0 < h < 2.2
        assert np.isfinite(t.bbox[t.found]).all()


@pytest.mark.slow
def test_pose_workers_give_the_same_tracks_as_one_process(tmp_path):
    """Several people's pose calls run in parallel worker processes (pose.workers); each person's MediaPipe
    graph lives in one worker, so the tracks and skeletons are those of the single-process run."""
    _need(VTEST)
    kw = dict(max_frames=16, progress=False, min_track_frames=3, layouts=("kinect_v1",), multi_person=True)
    one = extract(VTEST, pose_workers=0, **kw)
    two = extract(VTEST, pose_workers=2, **kw)
    assert len(one.tracks) >= 2 and [t.track_id for t in one.tracks] == [t.track_id for t in two.tracks]
    for a, b in zip(one.tracks, two.tracks):
        assert (a.frames == b.frames).all() and (a.found == b.found).all()
        np.testing.assert_allclose(a.joints["kinect_v1"], b.joints["kinect_v1"], atol=1e-6)
    assert two.stats["pose_calls"] == one.stats["pose_calls"]


def test_pose_workers_setting_is_checked():
    from pose.extract import ExtractError, PosePipeline

    with pytest.raises(ExtractError, match="pose_workers"):
        PosePipeline(pose_workers=-1)


def _pose_in_daemon(q):
    from pose.extract import iter_tracks

    q.put(sum(len(ft) for ft in iter_tracks(str(VTEST), multi_person=True, max_frames=8, pose_workers=2,
                                            include_unconfirmed=True)))


def _workers_then_wait(q):
    from pose.workers import PoseWorkers

    w = PoseWorkers(2)
    q.put([p.pid for p in w._procs])
    time.sleep(600)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return any(line.startswith("State:") and "Z" in line for line in fh)  # exited, not yet reaped
    except FileNotFoundError:
        return True


@pytest.mark.slow
def test_pose_workers_run_inside_a_daemonic_stage_and_never_outlive_it():
    """`cagereid live --source VIDEO` poses in a daemonic stage process: the workers start there too, and
    end when that process dies, even by SIGKILL (their pipe closes)."""
    import multiprocessing
    import signal

    _need(VTEST)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_pose_in_daemon, args=(q,), daemon=True)
    p.start()
    assert q.get(timeout=300) > 0  # people posed by the workers of a daemonic process
    p.join(timeout=30)
    p = ctx.Process(target=_workers_then_wait, args=(q,), daemon=True)
    p.start()
    pids = q.get(timeout=120)
    os.kill(p.pid, signal.SIGKILL)
    p.join(timeout=10)
    deadline = time.time() + 60
    while time.time() < deadline and not all(_gone(pid) for pid in pids):
        time.sleep(0.2)
    assert all(_gone(pid) for pid in pids)


def _walk_clip(path: Path, n: int, fourcc="MJPG") -> Path:
    cap = cv2.VideoCapture(str(WALK))
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, (640, 360))
    for _ in range(n):
        ok, img = cap.read()
        w.write(cv2.resize(img, (640, 360)))
    w.release()
    cap.release()
    return path


def test_broken_video_keeps_what_was_extracted(tmp_path):
    _need(WALK)
    clip = _walk_clip(tmp_path / "clip.avi", 24)
    data = clip.read_bytes()
    broken = tmp_path / "broken.avi"
    broken.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "broken.npz"
    with pytest.raises(SourceError) as info:
        extract(broken, out_npz=out, overlay=tmp_path / "b.avi", progress=False, min_track_frames=3)
    msg = str(info.value)
    assert "\n" not in msg and "broken.avi" in msg and "kept" in msg and str(out) in msg
    back = load_tracks(out)
    assert not back.complete and "could not decode frame" in back.error
    assert 5 < back.n_frames < 24
    assert back.main_track().n_found >= back.n_frames - 1
    assert (tmp_path / "b.avi").exists()


def test_broken_video_without_person_still_writes_partial_file(tmp_path):
    w = cv2.VideoWriter(str(tmp_path / "grey.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 64))
    for i in range(30):
        w.write(np.full((64, 96, 3), 100 + i, np.uint8))
    w.release()
    data = (tmp_path / "grey.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="stopped after"):
        extract(tmp_path / "cut.avi", out_npz=tmp_path / "cut.npz", progress=False, multi_person=False)
    back = load_tracks(tmp_path / "cut.npz")
    assert back.tracks == [] and not back.complete and back.n_frames > 0


def test_load_tracks_errors_name_the_file(tmp_path):
    with pytest.raises(SourceError, match="nothere.npz"):
        load_tracks(tmp_path / "nothere.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(SourceError, match="junk.npz"):
        load_tracks(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(SourceError, match="other.npz.*meta"):
        load_tracks(tmp_path / "other.npz")


def test_mediapipe_world_to_kinect_axes_keeps_left_and_right():
    from pose.extract import convert_world
    from pose.layouts import get_layout

    # a person facing the camera: their left shoulder/hip appear on the image's right (MediaPipe +x), head up
    # (MediaPipe -y), nose closer to the camera (MediaPipe -z)
    w = np.zeros((33, 3))
    w[11], w[12] = [0.2, -0.5, 0.0], [-0.2, -0.5, 0.0]     # left / right shoulder
    w[23], w[24] = [0.1, 0.0, 0.0], [-0.1, 0.0, 0.0]       # left / right hip
    w[7], w[8] = [0.08, -0.65, 0.05], [-0.08, -0.65, 0.05]  # ears
    w[0] = [0.0, -0.65, -0.1]
    w[[15, 17, 19]] = np.nan                                # left wrist, pinky, index not measured
    k, valid = convert_world(w, np.ones(33), "kinect_v1")
    L = get_layout("kinect_v1")
    assert k[L.index("ShoulderLeft"), 0] == pytest.approx(-0.2)   # Kinect: the person's left is at -x
    assert k[L.index("Head"), 1] == pytest.approx(0.65)           # y up
    assert k[L.index("HipCenter")] == pytest.approx([0, 0, 0])
    assert valid[L.index("ShoulderLeft")] and not valid[L.index("HandLeft")]  # its sources missing: NaN, invalid
    assert np.isnan(k[L.index("HandLeft")]).all()


def test_translation_estimate_recovers_a_known_camera_position():
    from pose.estimator import estimate_translation

    rng = np.random.default_rng(0)
    world = rng.normal(0, 0.4, (33, 3))
    t = np.array([0.5, -0.2, 4.0])
    f, W, H = 1000.0, 1280, 720
    P = world + t
    uv = np.stack([f * P[:, 0] / P[:, 2] + W / 2, f * P[:, 1] / P[:, 2] + H / 2], 1)
    assert np.allclose(estimate_translation(world, uv, np.ones(33), (W, H), focal_px=f), t)
    assert np.isnan(estimate_translation(world, uv, np.zeros(33), (W, H))).all()


def test_unbundled_model_complexity_is_a_clear_error():
    for c in (0, 2):
        if model_path(c).exists():
            continue  # the user installed that model: then it is allowed
        with pytest.raises(EstimatorError, match=f"model_complexity={c}.*not installed"):
            check_model(c)
    check_model(1)


def test_cli_errors_are_one_line(tmp_path, capsys):
    from cagereid.cli import main

    assert main(["extract", "--source", str(tmp_path / "missing.avi"), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "missing.avi" in err and "\n" not in err


@pytest.mark.slow
def test_a_dead_pose_worker_is_a_one_line_error():
    import signal

    from pose.estimator import prepare_crop
    from pose.workers import PoseWorkers, WorkerError

    crop = prepare_crop(np.zeros((64, 48, 3), np.uint8))
    with PoseWorkers(1) as w:
        w.submit([(1, crop, False)])
        assert w.collect()[0][0] is None  # a black image: nobody
        os.kill(w._procs[0].pid, signal.SIGKILL)
        w._procs[0].join(timeout=10)
        with pytest.raises(WorkerError, match="exited"):
            w.submit([(1, crop, False)])
            w.collect()
    assert getattr(WorkerError, "user_error", False)


def test_recorded_tracks_are_read_with_the_live_visibility_threshold(tmp_path):
    """A file extracted with --min-visibility 0.5 reads like one made with the default (MediaPipe's estimates of
    hidden landmarks kept), so enrolment, live and evaluation see the same joints whatever made the file."""
    from pose.extract import MIN_VISIBILITY, ExtractResult, TrackSequence, convert_world, load_tracks, save_tracks
    from stream.producer import open_observations

    T = 12
    world = np.random.default_rng(0).normal(0, 0.3, (T, 33, 3))
    vis = np.ones((T, 33))
    vis[:, 14] = 0.2  # the right elbow: hidden, estimated
    tr = TrackSequence(1, np.arange(T), np.arange(T) / 30, np.ones(T, bool), np.zeros(T, bool), world,
                       np.zeros((T, 33, 2)), vis, np.zeros((T, 4)), np.zeros((T, 3)))
    tr.joints["kinect_v1"], tr.valid["kinect_v1"] = convert_world(world, vis, "kinect_v1", 0.5)
    assert not tr.valid["kinect_v1"][:, 9].any()  # ElbowRight missing in the file
    save_tracks(tmp_path / "t.npz", ExtractResult("x", "video", 30.0, None, T, ("kinect_v1",), [tr]))
    back = load_tracks(tmp_path / "t.npz").tracks[0]
    joints, valid = back.layout_joints("kinect_v1")
    assert MIN_VISIBILITY == 0.0 and valid.all()
    assert np.allclose(joints, convert_world(world, vis, "kinect_v1", 0.0)[0])
    obs, _ = open_observations(str(tmp_path / "t.npz"), "kinect_v1", 30.0)
    assert all(o.valid.all() for o in obs)
    stored, stored_valid = back.layout_joints("kinect_v1", None)  # None: as stored
    assert not stored_valid[:, 9].any()
