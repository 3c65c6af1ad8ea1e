"""CageExtractor: AP vs SC shapes and content, normalisation inside, embeddings, fingerprint."""
import numpy as np
import pytest
import torch

from cages.encoder import CageEncoder, ConfigError, EncoderConfig
from cages.features import CageExtractor, FeatureConfig, bone_lengths, normalise_windows


@pytest.fixture(scope="module")
def extractor():
    torch.manual_seed(0)
    enc = CageEncoder(EncoderConfig(J=5, f=4, hidden=8, head_hidden=8, head_dim=8))
    return CageExtractor(enc, FeatureConfig(centre=[0]), device="cpu")


def windows(n=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 4, 5, 3))


def test_ap_and_sc_shapes(extractor):
    w = windows()
    ap = extractor.frame_level(w)
    sc = extractor.sequence_level(w)
    assert ap.shape == (3, 4, 8 * 3)  # (B, f, D_ap), D_ap = hidden x axes
    assert sc.shape == (3, 4 * 8 * 3)  # (B, f * D_ap)
    # SC = [vec(C^x); vec(C^y); vec(C^z)], each vec step-major; AP row t = [c_t^x; c_t^y; c_t^z]
    for a in range(3):
        assert torch.allclose(sc[:, a * 32:(a + 1) * 32], ap[:, :, a * 8:(a + 1) * 8].reshape(3, 32))


def test_rev_rec_plus_width():
    enc = CageEncoder(EncoderConfig(J=5, f=4, hidden=8, model="rev_rec_plus"))
    ext = CageExtractor(enc, FeatureConfig())
    assert ext.frame_level(windows()).shape == (3, 4, 8 * 3 * 3)
    assert ext.sequence_level(windows()).shape == (3, 4 * 72)


def test_normalisation_is_inside_and_inputs_can_be_numpy_or_torch(extractor):
    w = windows()
    shifted = w + np.array([1.0, -2.0, 3.0])  # the same skeletons elsewhere in the room
    assert torch.allclose(extractor.frame_level(w), extractor.frame_level(shifted), atol=1e-5)
    assert torch.allclose(extractor.frame_level(w), extractor.frame_level(torch.as_tensor(w)), atol=1e-6)


def test_batch_size_does_not_change_features(extractor):
    w = windows(7)
    full = extractor.embed(w)
    extractor.features.batch_size = 2
    try:
        assert torch.allclose(full, extractor.embed(w), atol=1e-6)
        assert extractor.embed(w[:0]).shape == (0, 24)
    finally:
        extractor.features.batch_size = 1024


def test_embed_is_unit_mean_ap_without_bones(extractor):
    w = windows()
    e = extractor.embed(w)
    assert e.shape == (3, 24)
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(e, torch.nn.functional.normalize(extractor.frame_level(w).mean(1), dim=1), atol=1e-6)


def test_bone_cue_in_embed_and_rn_rows():
    torch.manual_seed(0)
    enc = CageEncoder(EncoderConfig(J=5, f=4, hidden=8))
    fc = FeatureConfig(centre=[0], bones=[[0, 1], [1, 2]], bone_mean=[0.0, 0.0], bone_std=[1.0, 1.0], bone_weight=2.0)
    ext = CageExtractor(enc, fc)
    w = windows()
    e = ext.embed(w)
    assert e.shape == (3, 24 + 2)
    bl = bone_lengths(normalise_windows(w, [0]), [[0, 1], [1, 2]])
    assert torch.allclose(e[:, 24:], 2.0 * bl / 2 ** 0.5, atol=1e-5)
    assert torch.equal(ext.rn_rows(w), ext.frame_level(w))  # default: the RN reads the AP rows
    fc.rn_bones = True
    rows = ext.rn_rows(w)
    assert rows.shape == (3, 4, 26) and torch.allclose(rows[:, 0, 24:], rows[:, 3, 24:])


def test_wrong_window_shape_is_refused(extractor):
    with pytest.raises(ValueError, match="expects"):
        extractor.frame_level(np.zeros((2, 6, 5, 3)))


def test_fingerprint_is_stable_and_tracks_weights(extractor):
    fp = extractor.fingerprint
    assert fp == extractor.fingerprint and len(fp) == 12
    torch.manual_seed(1)
    other = CageExtractor(CageEncoder(EncoderConfig(J=5, f=4, hidden=8, head_hidden=8, head_dim=8)), FeatureConfig(centre=[0]))
    assert other.fingerprint != fp


def test_nan_joints_do_not_poison_the_window(extractor):
    w = windows()
    w[0, 1, 3] = np.nan
    assert torch.isfinite(extractor.embed(w)).all()


def test_traced_extractor_gives_the_eager_numbers_at_any_batch_size():
    torch.manual_seed(1)
    enc = CageEncoder(EncoderConfig(J=5, f=4, hidden=8, head_hidden=8, head_dim=8))
    eager = CageExtractor(enc, FeatureConfig(centre=[0]), device="cpu")
    traced = CageExtractor(enc, FeatureConfig(centre=[0]), device="cpu").trace()
    for n in (1, 3, 17):  # the trace was recorded at another batch size
        w = windows(n, seed=n)
        assert torch.allclose(traced.embed(w), eager.embed(w), atol=1e-5)
        assert torch.allclose(traced.frame_level(w), eager.frame_level(w), atol=1e-5)


def test_head_readout_embeds_the_normalised_projections_of_every_model():
    torch.manual_seed(2)
    enc = CageEncoder(EncoderConfig(J=5, f=4, hidden=8, head_hidden=8, head_dim=6))
    fc = FeatureConfig(centre=[0], bones=[[0, 1], [1, 2]], bone_mean=[0.0, 0.0], bone_std=[1.0, 1.0], bone_weight=0.5,
                       readout="head")
    ext = CageExtractor(enc, fc)
    w = windows(5)
    e = ext.embed(w)
    assert e.shape == (5, 3 * 6 + 2) == (5, ext.d_embed)
    ctx = enc.contexts(normalise_windows(w, [0]))
    z = torch.cat([torch.nn.functional.normalize(enc.models[k].project(ctx[k]), dim=-1) for k in enc.keys()], -1)
    assert torch.allclose(e[:, :18], torch.nn.functional.normalize(z, dim=-1), atol=1e-5)
    ext.trace()
    assert ext._traced_head is not None and ext._traced is None  # only the pass embed needs is traced ...
    assert torch.allclose(ext.embed(w), e, atol=1e-5)  # ... and it gives the same numbers
    with pytest.raises(ConfigError):
        FeatureConfig.from_dict({"readout": "mean"})


def test_fingerprint_ignores_the_default_readout_and_follows_any_other(extractor):
    """Checkpoints from before the readout and facing settings existed keep their fingerprint (so their galleries
    still match); a readout or facing that changes the embeddings changes it."""
    import hashlib
    import json

    h = hashlib.sha256()  # the fingerprint as computed before `readout` was a feature setting
    for name, t in sorted(extractor.model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
    old = {k: v for k, v in extractor.features.to_dict().items() if k not in ("readout", "facing")}
    h.update(json.dumps(old, sort_keys=True).encode())
    assert extractor.features.readout == "ap" and extractor.fingerprint == h.hexdigest()[:12]
    head = CageExtractor(extractor.model, FeatureConfig(centre=[0], readout="head"))
    assert head.fingerprint != extractor.fingerprint
    facing = CageExtractor(extractor.model, FeatureConfig(centre=[0], facing=[1, 2, 3, 4]))
    assert facing.fingerprint != CageExtractor(extractor.model, FeatureConfig(centre=[0])).fingerprint


def test_facing_turns_every_window_so_both_walking_directions_look_alike():
    """`FeatureConfig.facing` (live encoder): a window turned about the vertical axis by any angle normalises to the
    same numbers, with its left-to-right body axis along +x; without it nothing is turned."""
    import numpy as np

    from cages.features import normalise_windows
    from pose.layouts import get_layout

    L = get_layout("kinect_v1")
    facing = [L.index(n) for n in ("HipLeft", "HipRight", "ShoulderLeft", "ShoulderRight")]
    w = np.random.default_rng(0).normal(scale=0.3, size=(3, 6, 20, 3)).astype(np.float32)
    base = normalise_windows(w, [0], facing)
    axis = (base[..., facing[1], :] - base[..., facing[0], :] + base[..., facing[3], :] - base[..., facing[2], :]).mean(1)
    assert (axis[:, 0] > 0).all() and axis[:, 2].abs().max() < 1e-5
    for th in (0.7, np.pi, -2.0):  # a walk the other way is the same body turned by pi
        R = np.array([[np.cos(th), 0, np.sin(th)], [0, 1, 0], [-np.sin(th), 0, np.cos(th)]], np.float32)
        assert (normalise_windows(w @ R.T, [0], facing) - base).abs().max() < 1e-5
        assert (normalise_windows(w @ R.T, [0]) - normalise_windows(w, [0])).abs().max() > 0.1
