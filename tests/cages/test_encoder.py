"""The CAGE encoder: parameter count of the paper, TF LSTM semantics, attention/decoder shapes and semantics."""
import pytest
import torch

from cages.encoder import (AxisModel, CageEncoder, EncoderConfig, TFLSTMLayer, macs_per_window,
                           parameter_breakdown)
from cages.pretext import pretext_pair


def test_faithful_biwi_f6_has_the_papers_8474172_parameters():
    cfg = EncoderConfig(J=20, f=6, dummy_copies=True)
    model = CageEncoder(cfg)
    assert model.n_parameters() == 8_474_172
    assert sum(n for _, n in parameter_breakdown(cfg)) == 2_824_724
    # without the two unused TF variables (improved mode)
    assert CageEncoder(EncoderConfig(J=20, f=6)).n_parameters() == 7_623_228


def test_other_settings_match_the_spec_table():
    assert CageEncoder(EncoderConfig(J=25, f=6, dummy_copies=True)).n_parameters() == 8_524_107
    for f, n in ((4, 8_080_956), (8, 8_867_388), (10, 9_260_604)):
        assert sum(k for _, k in parameter_breakdown(EncoderConfig(J=20, f=f, dummy_copies=True))) * 3 == n


def test_macs_per_window_match_spec_section_9():
    m = macs_per_window(EncoderConfig(J=20, f=6))
    assert round(m["encoder"] / 1e6, 2) == 4.84
    assert round(m["decoder + attention + output"] / 1e6, 2) == 7.25
    assert round(sum(m.values()) / 1e6, 2) == 12.94


def test_tf_lstm_constant_forget_bias():
    layer = TFLSTMLayer(3, 4, forget_bias=1.0)
    with torch.no_grad():
        layer.kernel.zero_()
    c0 = torch.ones(1, 4)
    h, c = layer.step(layer.project_input(torch.zeros(1, 3)), torch.zeros(1, 4), c0)
    # all pre-activations 0: c = σ(0 + 1)·c0 + σ(0)·tanh(0), h = σ(0)·tanh(c)
    assert torch.allclose(c, torch.sigmoid(torch.tensor(1.0)).expand(1, 4))
    assert torch.allclose(h, 0.5 * torch.tanh(c))
    assert not any("forget" in n for n, _ in layer.named_parameters())  # a constant, not a parameter


def test_decoder_shapes_attention_rows_and_context_definition():
    torch.manual_seed(0)
    cfg = EncoderConfig(J=5, f=4, hidden=16, head_hidden=8, head_dim=8)
    m = AxisModel(cfg)
    x = torch.randn(3, 4, 5)
    H, states = m.encode(x)
    A, C, Y = m.decode(H, states)
    assert A.shape == (3, 4, 4) and C.shape == (3, 4, 16) and Y.shape == (3, 4, 5) and H.shape == (3, 4, 16)
    assert torch.allclose(A.sum(-1), torch.ones(3, 4), atol=1e-6)
    assert torch.allclose(C, A @ H, atol=1e-6)  # C = A H
    assert m.project(C).shape == (3, 8)


def test_forward_is_per_sample_in_a_batch():
    torch.manual_seed(0)
    m = AxisModel(EncoderConfig(J=5, f=4, hidden=16))
    x = torch.randn(5, 4, 5)
    _, C_all, _ = m(x)
    _, C_one, _ = m(x[2:3])
    assert torch.allclose(C_all[2:3], C_one, atol=1e-5)


def test_zero_decoder_inputs_ignore_targets_teacher_forcing_does_not():
    torch.manual_seed(0)
    cfg = EncoderConfig(J=5, f=4, hidden=16, decoder_input="teacher")
    enc = CageEncoder(cfg)
    x = torch.randn(2, 4, 5)
    y = torch.randn(2, 4, 5)
    y_in = enc.decoder_inputs(y)
    assert torch.equal(y_in[:, 0], torch.zeros(2, 5)) and torch.equal(y_in[:, 1:], y[:, :-1])
    m = enc.models["rev_rec_x"]
    _, C_zero, _ = m(x, None)
    _, C_teacher, _ = m(x, y_in)
    assert not torch.allclose(C_zero, C_teacher)
    assert CageEncoder(EncoderConfig(J=5, f=4, hidden=16)).decoder_inputs(y) is None


def test_reverse_reconstruction_targets():
    x = torch.arange(2 * 6 * 3, dtype=torch.float32).reshape(2, 6, 3)
    inp, tgt = pretext_pair("rev_rec", x)
    assert torch.equal(inp, x)
    for k in range(6):
        assert torch.equal(tgt[:, k], x[:, 5 - k])  # target[n, k] = source[n, f-1-k]


def test_sorting_and_prediction_pairs():
    x = torch.randn(2, 4, 3)
    perm = torch.tensor([[3, 2, 1, 0], [1, 0, 3, 2]])
    inp, tgt = pretext_pair("sorting", x, perm=perm)
    assert torch.equal(tgt, x)
    assert torch.equal(inp[0], x[0, [3, 2, 1, 0]]) and torch.equal(inp[1], x[1, [1, 0, 3, 2]])
    nxt = torch.randn(2, 4, 3)
    assert torch.equal(pretext_pair("prediction", x, next_x=nxt)[1], nxt)


def test_rev_rec_plus_models_and_feature_blocks():
    full = EncoderConfig(J=5, f=4, hidden=8, model="rev_rec_plus")
    assert full.tasks == ("rev_rec", "prediction", "sorting") and full.d_ap == 8 * 3 * 3
    assert full.task_attention("prediction") == "BA" and full.task_attention("rev_rec") == "LA"
    faithful = EncoderConfig(J=5, f=4, hidden=8, model="rev_rec_plus", faithful_plus=True)
    assert faithful.tasks == ("rev_rec",) and faithful.feature_blocks == ("rev_rec",) * 3
    assert len(CageEncoder(full).models) == 9 and len(CageEncoder(faithful).models) == 3


@pytest.mark.parametrize("decoder_input,forget_bias", [("zero", 1.0), ("teacher", 1.0), ("zero", 0.3)])
def test_fused_training_forward_equals_the_tf_cells_values_and_gradients(decoder_input, forget_bias):
    """Training runs both encoder layers in one torch.lstm call and each decoder step's two layers in another
    (oneDNN on CPU); outputs and every parameter's gradient must match the cell-by-cell TF semantics."""
    torch.manual_seed(0)
    m = AxisModel(EncoderConfig(J=7, f=5, hidden=16, head_hidden=8, head_dim=8, decoder_input=decoder_input,
                                forget_bias=forget_bias))
    with torch.no_grad():
        for p in m.parameters():  # non-zero biases so the gate order of every bias is exercised
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(4, 5, 7)
    y_in = torch.randn(4, 5, 7) if decoder_input == "teacher" else None
    params = list(m.parameters())

    def run(fn):
        A, C, Y = fn(x, y_in)
        loss = (Y ** 2).sum() + (A * torch.arange(5.0)).sum() + m.project(C).pow(2).sum()
        return (A, C, Y), torch.autograd.grad(loss, params)

    (fused, g_fused), (ref, g_ref) = run(m.forward), run(m.forward_reference)
    for a, b in zip(fused, ref):
        assert torch.allclose(a, b, atol=1e-6)
    for (name, _), a, b in zip(m.named_parameters(), g_fused, g_ref):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), name
    with torch.no_grad():  # inference (no backward state kept) gives the same numbers
        assert torch.allclose(m(x, y_in)[1], ref[1], atol=1e-6)
    # the fused weights are a re-parameterisation: no new parameters, the forget offset is not one
    assert not any("forget" in n for n, _ in m.named_parameters()) and "forget" not in str(m.state_dict().keys())


def test_shipped_checkpoint_keeps_its_fingerprint_and_embeddings():
    """Galleries are keyed by the model fingerprint (a hash of the state_dict): the fused training kernels must
    not change the checkpoint format, and the shipped model's embeddings must be what the TF cells give."""
    from pathlib import Path

    from cages.features import CageExtractor, normalise_windows

    ext = CageExtractor.from_checkpoint(Path(__file__).resolve().parents[2] / "cages" / "pretrained")
    assert ext.fingerprint == "d5934583e5ab"  # the value galleries enrolled before this change store
    w = torch.randn(5, ext.cfg.f, ext.cfg.J, 3, generator=torch.Generator().manual_seed(1))
    ctx = ext.model.contexts(normalise_windows(w, ext.features.centre))
    with torch.no_grad():
        for k, m in ext.model.models.items():
            x = normalise_windows(w, ext.features.centre)[..., "xyz".index(k[-1])]
            assert torch.allclose(m.forward_reference(x)[1], ctx[k], atol=1e-5), k
            assert torch.allclose(m(x)[1], ctx[k], atol=1e-5), k


@pytest.mark.parametrize("model,decoder_input,forget_bias", [("rev_rec", "zero", 1.0), ("rev_rec_plus", "zero", 1.0),
                                                             ("rev_rec", "teacher", 1.0), ("rev_rec", "zero", 0.3)])
def test_fused_contexts_equal_each_model_run_on_its_own(model, decoder_input, forget_bias):
    """`contexts` runs all axis/task models in one batched pass (forget bias folded into the biases, tanh
    through sigmoid); it must give each model's own result."""
    torch.manual_seed(0)
    enc = CageEncoder(EncoderConfig(J=7, f=5, hidden=16, model=model, decoder_input=decoder_input,
                                    forget_bias=forget_bias)).eval()
    windows = torch.randn(4, 5, 7, 3)
    fused, ref = enc.contexts(windows), enc.contexts_per_model(windows)
    assert fused.keys() == ref.keys()
    for k in ref:
        assert torch.allclose(fused[k], ref[k], atol=1e-6), k
    # weights changed after a first call (training goes on): the stacked copy must follow
    with torch.no_grad():
        enc.models[enc.keys()[0]].enc1.kernel.add_(0.05)
    fused, ref = enc.contexts(windows), enc.contexts_per_model(windows)
    assert all(torch.allclose(fused[k], ref[k], atol=1e-6) for k in ref)
    # ... and so must new parameter objects (load_state_dict(assign=True) replaces them)
    state = {k: v + 0.03 for k, v in enc.state_dict().items()}
    enc.load_state_dict(state, assign=True)
    fused, ref = enc.contexts(windows), enc.contexts_per_model(windows)
    assert all(torch.allclose(fused[k], ref[k], atol=1e-6) for k in ref)


def test_fused_contexts_run_on_the_models_device():
    """Nothing in the fused pass may be created on the CPU behind the model's back (CUDA, meta, ...)."""
    enc = CageEncoder(EncoderConfig(J=5, f=4, hidden=8)).eval().to("meta")
    out = enc.contexts(torch.zeros(2, 4, 5, 3, device="meta"))
    assert all(c.device.type == "meta" and c.shape == (2, 4, 8) for c in out.values())
