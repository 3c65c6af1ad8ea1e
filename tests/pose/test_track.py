"""IoU + Hungarian tracking: identities survive crossing paths, missed detections and weak detections."""
import numpy as np

from pose.detect import Detection, iou_matrix, nms
from pose.track import Tracker, pose_box


def _box(cx, cy, w=40, h=100):
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], float)


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    assert np.allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (1, 0)


def test_nms_drops_overlaps_and_boxes_inside_better_ones():
    boxes = np.array([[0, 0, 10, 20], [1, 0, 11, 20], [2, 2, 8, 10], [50, 0, 60, 20]], float)
    keep = nms(boxes, np.array([2.0, 1.0, 1.5, 0.5]))
    assert keep.tolist() == [0, 3]


def _run(tracker, frames):
    """frames: list of lists of (cx, cy, score); returns {frame: {track_id: centre x}}."""
    seen = {}
    for f, dets in enumerate(frames):
        tracker.predict(f, (1000, 500))
        tracker.update([Detection(_box(cx, cy), s) for cx, cy, s in dets])
        seen[f] = {t.track_id: 0.5 * (t.box[0] + t.box[2]) for t in tracker.tracks}
    return seen


def test_two_walkers_keep_their_ids():
    # A walks right from x=100, B walks left from x=600, 10 px per frame, never overlapping much
    frames = [[(100 + 10 * f, 200, 2.0), (600 - 10 * f, 320, 2.0)] for f in range(20)]
    seen = _run(Tracker(min_hits=2), frames)
    ids = sorted(seen[19])
    assert ids == [1, 2]
    assert abs(seen[19][1] - 290) < 15 and abs(seen[19][2] - 410) < 15


def test_missed_detections_and_weak_detections_keep_the_track():
    frames = []
    for f in range(30):
        if 10 <= f < 14:
            frames.append([])                         # detector misses the person for 4 frames
        elif 20 <= f < 25:
            frames.append([(100 + 5 * f, 200, 0.4)])  # only weak detections: keep, never start tracks
        else:
            frames.append([(100 + 5 * f, 200, 2.0)])
    tr = Tracker(min_hits=2, max_lost=10)
    seen = _run(tr, frames)
    assert all(list(s) == [1] for s in seen.values())
    assert tr.tracks[0].confirmed
    # the prediction during the miss keeps moving with the person
    assert abs(seen[13][1] - (100 + 5 * 13)) < 10


def test_weak_detections_alone_start_nothing_and_stale_tracks_die():
    tr = Tracker(min_hits=2, max_lost=3)
    _run(tr, [[(100, 200, 0.5)]] * 5)
    assert tr.tracks == []
    _run(tr, [[(100, 200, 2.0)]] + [[]] * 5)
    assert tr.tracks == []


def test_pose_refreshes_box_between_detections():
    tr = Tracker(min_hits=2)
    tr.predict(0, (1000, 500))
    (t,) = tr.update([Detection(_box(100, 200), 2.0)])
    # the person moves 30 px right; only the pose sees it
    kp = np.stack([np.linspace(115, 145, 33), np.linspace(160, 240, 33)], 1)
    tr.predict(1, (1000, 500))
    tr.observe_pose(t, kp, np.ones(33))
    assert 0.5 * (t.box[0] + t.box[2]) > 110 and t.confirmed
    assert pose_box(kp, np.zeros(33)) is None


def test_track_leaving_the_image_is_removed():
    tr = Tracker(min_hits=1, max_lost=100)
    frames = [[(900 + 10 * f, 200, 2.0)] if f < 8 else [] for f in range(30)]
    seen = _run(tr, frames)
    assert list(seen[7]) == [1]
    assert tr.tracks == []  # predicted out of the 1000-px-wide image long before max_lost


def test_removed_false_positive_is_not_recreated_at_once():
    tr = Tracker(min_hits=3)
    tr.predict(0, (1000, 500))
    (t,) = tr.update([Detection(_box(300, 200), 2.0)])
    tr.remove(t, suppress_frames=10)
    assert tr.tracks == [] and tr.removed == [t]
    tr.predict(5, (1000, 500))
    assert tr.update([Detection(_box(300, 200), 2.0)]) == []        # same place: suppressed
    assert len(tr.update([Detection(_box(700, 200), 2.0)])) == 1    # elsewhere: a new track
    tr.predict(20, (1000, 500))
    assert len(tr.update([Detection(_box(300, 200), 2.0)])) == 1    # suppression expired
