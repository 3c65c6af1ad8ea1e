"""Multi-person mode runs the people detector in a thread beside the pose calls and feeds its boxes to the
tracker ``detect_lag`` frames later, moved by how far their tracks moved since: a walking person's track must not
be pulled back to where they were when the detector started, nor duplicated."""
import numpy as np

from pose.detect import Detection
from pose.estimator import PoseResult
from pose.pipeline import PosePipeline
from pose.sources import Frame

SPEED = 6.0  # px per frame, to the right


def _person_box(i):
    x = 200 + SPEED * i
    return np.array([x, 100, x + 80, 300], float)


class _Walker:
    """A pose that follows the walker: keypoints filling their box at the frame being posed."""

    def __init__(self, clock):
        self.clock = clock

    def process(self, image, roi=None):
        x0, y0, x1, y1 = _person_box(self.clock[0])
        kp = np.stack([np.linspace(x0 + 20, x1 - 20, 33), np.linspace(y0 + 15, y1 - 10, 33)], 1)
        return PoseResult(np.zeros((33, 3)), kp, np.ones(33))

    def close(self):
        pass


def test_late_detections_are_moved_with_their_track(monkeypatch):
    clock = [0]
    pipe = PosePipeline(multi_person=True, pose_workers=0, smooth=False, detect_every=5, detect_lag=3)
    monkeypatch.setattr(pipe, "_new_estimator", lambda crop: _Walker(clock))
    # the detector sees the walker where they are in the frame it was given (its index is written in pixel 0)
    monkeypatch.setattr(pipe, "_detect", lambda image, target_height=None: [Detection(_person_box(int(image[0, 0, 0])), 2.0)])
    errors, ids = [], set()
    for i in range(40):
        clock[0] = i
        image = np.zeros((480, 640, 3), np.uint8)
        image[0, 0, 0] = i
        pipe.step(Frame(i, i / 25, image))
        assert len(pipe.tracker.tracks) == 1  # never a duplicate from a late box
        t = pipe.tracker.tracks[0]
        ids.add(t.track_id)
        if i >= 10:
            errors.append(abs(0.5 * (t.box[0] + t.box[2]) - 0.5 * (_person_box(i)[0] + _person_box(i)[2])))
    pipe.close()
    assert ids == {1}
    # a late box applied unmoved would pull the track ~3 frames x 6 px x 0.7 = 12 px behind the walker
    assert max(errors) < 6.0, errors
