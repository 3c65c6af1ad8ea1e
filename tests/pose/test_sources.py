"""Frame sources: videos, image folders, cameras; timestamps; one-line errors that say how far they got."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose.sources import Frame, SourceError, open_source

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
WALK = DATA / "video" / "openpose_walk.avi"


def _frame(i: int, w: int = 64, h: int = 48) -> np.ndarray:
    img = np.full((h, w, 3), (i * 9) % 256, np.uint8)
    cv2.putText(img, str(i), (4, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    return img


def _write_video(path: Path, n: int = 30, fps: float = 10.0, fourcc: str = "MJPG") -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (64, 48))
    assert w.isOpened()
    for i in range(n):
        w.write(_frame(i))
    w.release()
    return path


def test_video_frames_have_indices_and_timestamps(tmp_path):
    path = _write_video(tmp_path / "clip.avi", n=30, fps=10.0)
    with open_source(path) as src:
        assert src.kind == "video" and src.frame_count == 30 and src.fps == 10.0 and src.size == (64, 48)
        frames = list(src)
    assert [f.index for f in frames] == list(range(30))
    assert np.allclose([f.timestamp_s for f in frames], np.arange(30) / 10.0)
    assert all(isinstance(f, Frame) and f.image_bgr.shape == (48, 64, 3) for f in frames)
    # the frames are the ones written, in order (MJPG is lossy: compare brightness)
    assert abs(float(frames[20].image_bgr.mean()) - float(_frame(20).mean())) < 10


def test_max_frames_and_string_path(tmp_path):
    path = _write_video(tmp_path / "clip.avi", n=30)
    assert len(list(open_source(str(path), max_frames=7))) == 7


def test_image_folder_natural_order_and_fps(tmp_path):
    for i in (0, 1, 2, 10, 11):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), _frame(i))
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_source(tmp_path, fps=5)
    frames = list(src)
    assert src.kind == "images" and len(frames) == 5
    # natural order: img2 before img10 (a plain sort would put img10 first)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert np.array_equal(frames[3].image_bgr, _frame(10))
    assert np.allclose([f.timestamp_s for f in frames], np.arange(5) / 5.0)


def test_unreadable_image_in_folder_says_how_far(tmp_path):
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), _frame(i))
    (tmp_path / "002.png").write_bytes(b"not a png")
    got = []
    with pytest.raises(SourceError, match=r"002\.png.*stopped after 2 frames"):
        for f in open_source(tmp_path):
            got.append(f.index)
    assert got == [0, 1]


def test_truncated_video_raises_after_good_frames(tmp_path):
    path = _write_video(tmp_path / "full.avi", n=40)
    data = path.read_bytes()
    broken = tmp_path / "broken.avi"
    broken.write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(SourceError) as info:
        for f in open_source(broken):
            got.append(f.index)
    msg = str(info.value)
    assert "\n" not in msg and "broken.avi" in msg
    assert 5 < len(got) < 40
    assert f"stopped after {len(got)} frames" in msg


def _put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, pattern", [
    (lambda d: d / "missing.avi", "no such file"),
    (lambda d: _put(d / "empty.avi", b""), "empty"),
    (lambda d: _put(d / "junk.avi", b"\x00garbage" * 100), "cannot open"),
    (lambda d: (d / "e").mkdir() or d / "e", "no images"),
    (lambda d: cv2.imwrite(str(d / "one.png"), _frame(0)) and d / "one.png", "single image"),
])
def test_open_errors_are_one_line_and_name_the_source(tmp_path, make, pattern):
    spec = make(tmp_path)
    with pytest.raises(SourceError, match=pattern) as info:
        open_source(spec)
    assert "\n" not in str(info.value) and Path(spec).name in str(info.value)


def test_missing_camera_is_a_source_error():
    with pytest.raises(SourceError, match="camera 97"):
        open_source(97)


def test_real_video_header_and_first_frames():
    if not WALK.exists():
        pytest.skip(f"real video not available: {WALK} (../shared/data absent)")
    with open_source(WALK, max_frames=3) as src:
        assert src.frame_count == 205 and src.size == (1280, 720)
        frames = list(src)
    assert len(frames) == 3 and frames[0].image_bgr.shape == (720, 1280, 3)
    assert frames[1].timestamp_s > frames[0].timestamp_s == 0.0
