"""Side views (issue #14): a walker seen in profile, far arm hidden for the whole walk, enrols and is identified.

Through the stream code a user runs: `windows_of_source` (the live windowing) + `enroll_windows` (what
`cagereid enroll` stores), then `Identifier` (the identify stage's matching and decisions), with the shipped
encoder. Each person walks past the camera and back to enrol (the far arm is the left one one way, the right one
the other way) and is identified on a third, new walk.
"""
import numpy as np
import pytest

from pose import synthetic
from pose.layouts import get_layout

K1 = get_layout("kinect_v1")
PEOPLE = synthetic.make_identities(5, seed=0)


def profile_walk(pid: int, heading: float, seed: int, frames: int = 240):
    """A walk across the view (heading 0: to +x, 180: to -x) with the far arm missing in every frame."""
    r = synthetic.walk(PEOPLE[pid], frames, "kinect_v1", seed=seed, heading_deg=heading,
                       start=(-2.0 if heading == 0 else 2.0, 3.5))
    joints, valid = np.array(r.joints, np.float32), np.array(r.valid, bool)
    arms = {s: [K1.index(n + s) for n in ("Elbow", "Wrist", "Hand")] for s in ("Left", "Right")}
    far = max(arms, key=lambda s: np.nanmean(joints[:, arms[s], 2]))  # the arm farther from the camera
    joints[:, arms[far]] = np.nan
    valid[:, arms[far]] = False
    return joints, valid


def observations(joints, valid):
    from stream.producer import Observation

    return [Observation(0, t, t / 30, joints[t], valid[t]) for t in range(len(joints))]


@pytest.fixture(scope="module", params=["live", "demo"])
def encoder(request):
    """Both shipped encoders: the live-domain default of `live`/`enroll` and the synthetic one of the demo."""
    from stream.identify import DEMO_MODEL, load_encoder

    enc = load_encoder(None if request.param == "live" else DEMO_MODEL, "cpu")
    enc.kind = request.param
    return enc


def test_profile_walkers_enrol_and_are_identified(tmp_path, encoder):
    from stream.enrol import enroll_windows
    from stream.config import load_config
    from stream.identify import Identifier
    from stream.messages import Window
    from stream.windower import windows_of_source

    cfg = load_config(None)
    gallery = tmp_path / "gallery.sqlite"
    for pid in range(len(PEOPLE)):
        for seed, heading in ((1, 0.0), (3, 180.0)):  # past the camera and back
            per_track = windows_of_source(observations(*profile_walk(pid, heading, seed)), encoder.f, cfg.stride,
                                          layout=encoder.layout)
            assert len(per_track.get(0, [])) >= 70  # 240 frames at stride 3: every window is complete
            enroll_windows(gallery, f"p{pid}", np.stack(per_track[0]), encoder)
    ident = Identifier(encoder, cfg, gallery)
    named = {}
    for pid in range(len(PEOPLE)):
        windows = windows_of_source(observations(*profile_walk(pid, 0.0, 7)), encoder.f, cfg.stride,
                                    layout=encoder.layout)[0]
        decisions = ident.process([Window(track=pid, frame=i, t_pub=0.0, window=w, label="")
                                   for i, w in enumerate(windows)])
        named[pid] = decisions[-1].identity
    right = {pid for pid, name in named.items() if name == f"p{pid}"}
    assert all(name in (f"p{pid}", "unknown") for pid, name in named.items()), named  # never another person's name
    if encoder.kind == "demo":  # the encoder trained on these clean synthetic walkers: every one of them
        assert right == set(range(len(PEOPLE))), named
    else:  # the live-domain encoder (trained on monocular-degraded and real skeletons): README, "live-domain"
        assert len(right) >= 4, named


def test_without_the_policy_a_profile_walk_gives_no_window(encoder):
    """The failure the policy fixes: filling only from a joint's last position never completes a window."""
    from stream.windower import windows_of_source

    joints, valid = profile_walk(0, 0.0, 1)
    assert windows_of_source(observations(joints, valid), encoder.f, 3, layout=None) == {}
