"""Monocular-like degradation (UCalgary proxy of issue #14): which joints go missing, and how often."""
import numpy as np

from offline.degrade import Degradation, monocular_like
from pose import synthetic
from pose.layouts import get_layout

K1 = get_layout("kinect_v1")


def test_far_arm_hidden_whole_walk_far_leg_in_bursts_nothing_else():
    walk = synthetic.walk(synthetic.make_identities(1)[0], 300, "kinect_v1", seed=3, heading_deg=0.0)
    x, valid = monocular_like(walk.joints, K1, np.random.default_rng(0), far_side="Right")
    arm = [K1.index(n + "Right") for n in ("Elbow", "Wrist", "Hand")]
    leg = [K1.index(n + "Right") for n in ("Knee", "Ankle", "Foot")]
    assert not valid[:, arm].any() and np.isnan(x[:, arm]).all()
    hidden = 1 - valid[:, leg[0]].mean()
    assert 0.05 < hidden < 0.3 and (valid[:, leg].all(1) == valid[:, leg[0]]).all()  # the leg's joints together
    others = [j for j in range(20) if j not in arm + leg]
    assert valid[:, others].all() and np.abs(x[:, 0]).max() < 0.1  # hip-centred (root + jitter only)
    z_noise = np.std(x[:, others, 2] - (walk.joints[:, others, 2] - walk.joints[:, [0], 2]))
    assert 0.02 < z_noise < 0.05  # 3 cm depth noise + 1 cm jitter (+ the walker's own noise)
    _, v2 = monocular_like(walk.joints, K1, np.random.default_rng(0), "depth", Degradation(far_leg=0.0))
    assert v2[:, leg].all() and (~v2).sum() == 300 * 3  # 'depth' picks one arm, the leg stays
