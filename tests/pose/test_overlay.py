"""The overlay drawing: box, skeleton with left/right in different colours, name + confidence tag, trail.
Frames are rendered and their pixels checked."""
from types import SimpleNamespace

import numpy as np

from pose.overlay import LEFT_BGR, RIGHT_BGR, Trails, draw_observations, tag_text, track_colour


def _person(track=3, dx=0.0):
    """A standing stick figure facing the camera: its left side on the image's right."""
    kp = np.full((33, 2), np.nan)
    pts = {11: (260, 150), 12: (180, 150), 13: (280, 220), 14: (160, 220), 15: (290, 290), 16: (150, 290),
           23: (245, 300), 24: (195, 300), 25: (250, 390), 26: (190, 390), 27: (255, 470), 28: (185, 470)}
    for j, (x, y) in pts.items():
        kp[j] = (x + dx, y)
    return SimpleNamespace(track_id=track, keypoints2d=kp, visibility=np.where(np.isfinite(kp[:, 0]), 1.0, 0.0),
                           bbox=np.array([130 + dx, 120, 310 + dx, 490], float))


def _near(img, bgr, tol=40):
    return (np.abs(img.astype(int) - np.array(bgr)) <= tol).all(-1)


def test_left_and_right_limbs_have_their_own_colours():
    img = draw_observations(np.zeros((540, 480, 3), np.uint8), [_person()])
    left, right = _near(img, LEFT_BGR), _near(img, RIGHT_BGR)
    assert left.sum() > 200 and right.sum() > 200
    # the person's left limbs (image x > 220) are orange, the right ones (x < 220) blue
    assert np.nonzero(left)[1].min() > 220 and np.nonzero(right)[1].max() < 220


def test_box_and_name_tag_in_the_track_colour():
    col = track_colour(3)
    blank = np.zeros((540, 480, 3), np.uint8)
    plain = draw_observations(blank, [_person()])
    named = draw_observations(blank, [_person()], names={3: ("Alexandra", 0.92)})
    assert _near(plain[:, 128:133], col, 10).sum() > 300  # the box's left edge
    tag = lambda img: np.nonzero(_near(img[95:121], col, 10).any(0))[0]  # noqa: E731  the filled tag above the box
    assert tag(named).max() - tag(named).min() > tag(plain).max() - tag(plain).min() + 40  # longer text, wider tag
    assert tag_text(3, {3: ("Alexandra", 0.92)}) == "Alexandra 0.92" and tag_text(3, None) == "id 3"
    assert tag_text(3, {3: ("unknown", 0.6)}) == "unknown 0.60" and tag_text(3, {3: ("...", 0.0)}) == "id 3"


def test_trail_follows_the_hips_and_fades_out():
    trails = Trails(frames=10)
    for f in range(8):
        trails.update([_person(dx=-12.0 * (7 - f))], f)  # walking to the right
    img = draw_observations(np.zeros((540, 480, 3), np.uint8), [_person()], trails=trails)
    col = track_colour(3)
    row = _near(img[295:306], col, 30).any(0)  # anti-aliased: a little dimmer
    assert row[140:190].mean() > 0.7  # behind the walker (between the box edge and the hip bone), where the hips were
    trails.update([], 30)
    assert trails.points(3) == []  # a track gone for longer than the trail is forgotten


def test_trail_restarts_after_an_id_switch():
    trails = Trails(frames=10)
    for f in range(5):
        trails.update([_person(dx=-5.0 * (4 - f))], f)
    assert len(trails.points(3)) == 5
    trails.update([_person(dx=300.0)], 5)  # the id jumped to somebody far away: no line across the frame
    assert len(trails.points(3)) == 1
