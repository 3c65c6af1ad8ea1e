"""Joint layouts and conversions: tables consistent, known points map where the docs say, missing is NaN."""
import numpy as np
import pytest

from pose.convert import RECIPES, convert, recipes
from pose.layouts import LAYOUTS, LayoutError, bone_lengths, get_layout, root_position

REQUIRED_PAIRS = [("mediapipe33", "kinect_v1"), ("mediapipe33", "casia14"), ("mediapipe33", "openpose_body25"),
                  ("openpose_body25", "casia14"), ("openpose_coco18", "casia14"), ("kinect_v2", "kinect_v1"),
                  ("kinect_v1", "casia14"), ("ucalgary18", "kinect_v1"), ("ucalgary18", "common"),
                  ("kinect_v1", "common"), ("kinect_v2", "common")]


def test_layout_tables_consistent():
    expected_J = {"kinect_v1": 20, "kinect_v2": 25, "casia14": 14, "mediapipe33": 33, "ucalgary18": 18,
                  "openpose_body25": 25, "openpose_coco18": 18}
    for name, J in expected_J.items():
        assert get_layout(name).J == J
    for lay in LAYOUTS.values():
        assert len(set(lay.joints)) == lay.J, lay.name
        assert 0 <= lay.root < lay.J and all(0 <= r < lay.J for r in lay.root_joints)
        for a, b in lay.bones:
            assert 0 <= a < lay.J and 0 <= b < lay.J and a != b, (lay.name, a, b)
        assert len(set(map(frozenset, lay.bones))) == len(lay.bones), lay.name
        # every joint is reachable through bones (one connected skeleton)
        seen, stack = {lay.root}, [lay.root]
        while stack:
            j = stack.pop()
            for a, b in lay.bones:
                for u, v in ((a, b), (b, a)):
                    if u == j and v not in seen:
                        seen.add(v)
                        stack.append(v)
        if lay.name == "mediapipe33":  # MediaPipe's own POSE_CONNECTIONS leave the face (0-10) unattached
            assert seen == set(range(11, 33))
        else:
            assert len(seen) == lay.J, lay.name
        m = lay.mirror
        assert sorted(m) == list(range(lay.J)) and all(m[m[i]] == i for i in range(lay.J))
        assert m[lay.root] in lay.root_joints
    k1, c14, mp = get_layout("kinect_v1"), get_layout("casia14"), get_layout("mediapipe33")
    assert k1.mirror[k1.index("HandLeft")] == k1.index("HandRight") and k1.mirror[0] == 0
    assert c14.mirror[c14.index("L-knee")] == c14.index("R-knee") and c14.mirror[0] == 0
    assert mp.mirror[mp.index("left_eye_inner")] == mp.index("right_eye_inner")
    b25 = get_layout("openpose_body25")
    assert b25.mirror[b25.index("LSmallToe")] == b25.index("RSmallToe") and b25.mirror[1] == 1


def test_orders_match_the_sdks():
    k1, k2 = get_layout("kinect_v1"), get_layout("kinect_v2")
    assert k1.joints[0] == "HipCenter" and k1.index("HandRight") == 11 and k1.index("FootRight") == 19
    assert k2.index("SpineShoulder") == 20 and k2.index("ThumbRight") == 24
    assert get_layout("casia14").joints[8] == "R-hip" and get_layout("casia14").joints[13] == "L-ankle"
    mp = get_layout("mediapipe33")
    assert mp.index("left_hip") == 23 and mp.index("right_foot_index") == 32 and mp.enum.left_wrist == 15
    assert get_layout("openpose_body25").index("MidHip") == 8 and get_layout("openpose_coco18").index("LEar") == 17
    assert get_layout("ucalgary18").joints[:4] == ("FootLeft", "AnkleLeft", "KneeLeft", "HipLeft")


def test_unknown_layout_lists_valid_names():
    with pytest.raises(LayoutError, match="kinect_v1"):
        get_layout("kinect_v3")
    assert issubclass(LayoutError, ValueError)


def test_recipe_weights_sum_to_one_and_name_real_joints():
    for (a, b), table in RECIPES.items():
        src, dst = get_layout(a), get_layout(b)
        for name, r in table.items():
            dst.index(name)
            if r.terms:
                assert abs(sum(w for _, w in r.terms) - 1) < 1e-9, (a, b, name)
                for n, _ in r.terms:
                    src.index(n)


@pytest.mark.parametrize("src,dst", REQUIRED_PAIRS)
def test_required_conversions_shapes_and_translation(src, dst):
    rng = np.random.default_rng(0)
    s = get_layout(src)
    x = rng.normal(size=(4, 3, s.J, 3))
    out, valid = convert(x, src, dst)
    assert out.shape == (4, 3, get_layout(dst).J, 3) and valid.shape == out.shape[:-1]
    assert np.isnan(out[~valid]).all() and np.isfinite(out[valid]).all()
    # recipes are affine: translating the input translates the output
    out2, _ = convert(x + [1.0, -2.0, 3.0], src, dst)
    np.testing.assert_allclose(out2[valid], out[valid] + [1.0, -2.0, 3.0], atol=1e-12)


def test_mediapipe_hips_map_to_hip_centre():
    mp = get_layout("mediapipe33")
    x = np.random.default_rng(1).normal(size=(33, 3))
    x[mp.index("left_hip")] = [0.2, 1.0, 3.0]
    x[mp.index("right_hip")] = [-0.2, 0.8, 3.2]
    out, valid = convert(x, "mediapipe33", "kinect_v1")
    k1 = get_layout("kinect_v1")
    np.testing.assert_allclose(out[k1.index("HipCenter")], [0.0, 0.9, 3.1])
    np.testing.assert_allclose(out[k1.index("KneeLeft")], x[mp.index("left_knee")])
    assert valid.all()
    c, _ = convert(x, "mediapipe33", "casia14")
    np.testing.assert_allclose(c[get_layout("casia14").index("L-hip")], [0.2, 1.0, 3.0])
    np.testing.assert_allclose(root_position(c, "casia14"), [0.0, 0.9, 3.1])


def test_missing_source_gives_nan_and_invalid_never_zero():
    mp = get_layout("mediapipe33")
    x = np.ones((2, 33, 3))
    x[0, mp.index("left_hip")] = np.nan
    out, valid = convert(x, "mediapipe33", "kinect_v1")
    k1 = get_layout("kinect_v1")
    for name in ("HipCenter", "Spine", "HipLeft"):  # everything that uses the left hip
        assert not valid[0, k1.index(name)] and np.isnan(out[0, k1.index(name)]).all()
    assert valid[0, k1.index("HipRight")] and valid[1].all()
    # a target with no source at all (MediaPipe has no small toes)
    b, bv = convert(x[1], "mediapipe33", "openpose_body25")
    j = get_layout("openpose_body25").index("LSmallToe")
    assert not bv[j] and np.isnan(b[j]).all()
    assert not (out == 0).any() and not (b == 0).any()


def test_visibility_threshold():
    x = np.random.default_rng(2).normal(size=(33, 2))  # 2D works too
    vis = np.ones(33)
    vis[get_layout("mediapipe33").index("right_shoulder")] = 0.1
    out, valid = convert(x, "mediapipe33", "casia14", visibility=vis, min_visibility=0.5)
    c = get_layout("casia14")
    assert out.shape == (14, 2)
    assert not valid[c.index("neck")] and not valid[c.index("R-shoulder")] and valid[c.index("L-shoulder")]


def test_ucalgary_hands_extrapolated_or_marked():
    uc = get_layout("ucalgary18")
    x = np.zeros((18, 3)) + 5.0
    x[uc.index("ElbowLeft")] = [0.0, 1.0, 2.0]
    x[uc.index("WristLeft")] = [0.0, 0.7, 2.0]
    out, valid = convert(x, "ucalgary18", "kinect_v1")
    k1 = get_layout("kinect_v1")
    np.testing.assert_allclose(out[k1.index("HandLeft")], [0.0, 0.61, 2.0])  # wrist + 0.3 (wrist - elbow)
    assert recipes("ucalgary18", "kinect_v1")["HandLeft"].kind == "extrapolated"
    out, valid = convert(x, "ucalgary18", "kinect_v1", extrapolate=False)
    assert not valid[k1.index("HandLeft")] and np.isnan(out[k1.index("HandLeft")]).all()
    assert valid.sum() == 18


def test_common_subset_agrees_across_sources():
    """The same body in kinect_v2 and in UCalgary order lands on the same `common` joints."""
    k2, uc = get_layout("kinect_v2"), get_layout("ucalgary18")
    x2 = np.random.default_rng(3).normal(size=(25, 3))
    xu = np.stack([x2[k2.index(n)] for n in uc.joints])
    a, va = convert(x2, "kinect_v2", "common")
    b, vb = convert(xu, "ucalgary18", "common")
    assert va.all() and vb.all()
    np.testing.assert_allclose(a, b)


def test_identity_and_composed_conversion():
    x = np.random.default_rng(4).normal(size=(20, 3))
    out, valid = convert(x, "kinect_v1", "kinect_v1")
    np.testing.assert_array_equal(out, x)
    with pytest.raises(LayoutError, match="no conversion"):
        convert(np.zeros((14, 3)), "casia14", "mediapipe33")
    with pytest.raises(LayoutError, match=r"\(\.\.\., 20, C\)"):
        convert(np.zeros((5, 3)), "kinect_v1", "casia14")


def test_bone_lengths():
    k1 = get_layout("kinect_v1")
    x = np.zeros((20, 3))
    x[k1.index("Spine")] = [0.0, 0.3, 0.0]
    bl = bone_lengths(x[None], "kinect_v1")
    assert bl.shape == (1, len(k1.bones))
    assert bl[0, k1.bones.index((0, 1))] == pytest.approx(0.3)
