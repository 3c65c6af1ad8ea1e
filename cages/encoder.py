"""The CAGE gait encoder: one LSTM encoder / attention decoder per coordinate axis (and pretext task).

Source: Rao et al., "A Self-Supervised Gait Encoding Approach with Locality-Awareness for 3D Skeleton Based
Person Re-Identification", T-PAMI 2021, and its TensorFlow code (`Kali-Hac/Locality-Awareness-SGE`,
`train.py:429-704`), as described in ``CAGE_SPEC.md`` §2 and Appendix A.

Layout (read top to bottom): the TF-style LSTM layer, then `EncoderConfig`, then `AxisModel` (one axis of one
pretext task: encoder, Luong attention decoder with input feeding, projection head), then `CageEncoder`, the
wrapper holding every (task, axis) model. Shapes: ``B`` batch, ``f`` frames, ``J`` joints, ``h`` hidden width.

Only torch, numpy and cages.config are imported here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from cages.config import ConfigError, config_from_dict  # noqa: F401 - ConfigError is part of this module's API
from cages.pretext import extraction_target

AXES = "xyz"
TASKS = ("rev_rec", "prediction", "sorting", "rev_rec_plus")


# --------------------------------------------------------------------------------------------------------
# Parts
# --------------------------------------------------------------------------------------------------------
class TFLSTMLayer(nn.Module):
    """One LSTM layer with TensorFlow ``LSTMCell`` semantics (CAGE_SPEC §2.1, §2.8, §10 Q23).

    A single kernel ``K ∈ R^{(n_in+h)×4h}`` with TF gate order ``[i, j, f, o]`` and one bias vector, plus a
    *constant* forget bias (+1.0, not a parameter, not regularised):
    ``c_t = σ(f + 1)·c_{t−1} + σ(i)·tanh(j)``, ``h_t = σ(o)·tanh(c_t)``.
    Parameter count ``(n_in+h)·4h + 4h`` matches the TF graph exactly.
    """

    def __init__(self, n_in: int, hidden: int, forget_bias: float = 1.0):
        super().__init__()
        self.n_in, self.hidden, self.forget_bias = n_in, hidden, float(forget_bias)
        self.kernel = nn.Parameter(torch.empty(n_in + hidden, 4 * hidden))
        self.bias = nn.Parameter(torch.zeros(4 * hidden))
        nn.init.uniform_(self.kernel, -0.1, 0.1)  # TF: random_uniform_initializer(-0.1, 0.1)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """Input part of the pre-activations for all steps at once: ``(..., n_in) -> (..., 4h)``."""
        return x @ self.kernel[: self.n_in] + self.bias

    def step(self, x_proj: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = x_proj + h @ self.kernel[self.n_in:]  # (B, 4h)
        i, j, f, o = z.chunk(4, dim=-1)
        c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(j)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def run(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        """Run over a whole sequence ``x (B, f, n_in)``; returns outputs ``(B, f, h)`` and the final ``(h, c)``."""
        xp = self.project_input(x)  # (B, f, 4h): one matmul for every step
        outs = []
        for t in range(x.shape[1]):
            h, c = self.step(xp[:, t], h, c)
            outs.append(h)
        return torch.stack(outs, dim=1), (h, c)

    def torch_weights(self, input_rows: slice | None = None) -> list[torch.Tensor]:
        """This layer as PyTorch LSTM parameters ``[w_ih, w_hh, b_ih, b_hh]`` for ``torch.lstm`` (the fused
        oneDNN/cuDNN kernels): a re-parameterisation computed from `kernel`/`bias` on every call, so gradients
        flow back to them and checkpoints, fingerprints and the L2 term stay exactly as they were.

        Gate order TF ``[i, j, f, o]`` -> PyTorch ``[i, f, g=j, o]``; kernels transposed; the constant forget
        offset is ``b_hh`` (zero except the forget gate: a constant, not a parameter). ``input_rows`` picks the
        input rows of the kernel (the decoder's first layer without its all-zero inputs).
        """
        K = self.kernel
        order, b_hh = self._constants(K.device, K.dtype)
        rows = slice(0, self.n_in) if input_rows is None else input_rows
        # gathering the gate rows of the transposed kernel writes each (4h, n) weight contiguous in one pass
        w_ih = K[rows].t().index_select(0, order)
        w_hh = K[self.n_in:].t().index_select(0, order)
        return [w_ih, w_hh, self.bias.index_select(0, order), b_hh]

    def _constants(self, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The gate permutation and the constant ``b_hh`` (forget offset), built once per device and dtype."""
        cache = self.__dict__.setdefault("_const", {})
        k = (device, dtype)
        if k not in cache:
            h = self.hidden
            order = torch.cat([torch.arange(h), torch.arange(2 * h, 3 * h), torch.arange(h, 2 * h),
                               torch.arange(3 * h, 4 * h)]).to(device)
            b_hh = torch.zeros(4 * h, dtype=dtype)
            b_hh[h: 2 * h] = self.forget_bias
            cache[k] = (order, b_hh.to(device))
        return cache[k]


def fused_weights(layers: list[TFLSTMLayer], input_rows: slice | None = None) -> list[torch.Tensor]:
    """The flat ``torch.lstm`` weight list of stacked TF layers (``input_rows``: see `TFLSTMLayer.torch_weights`)."""
    weights = layers[0].torch_weights(input_rows)
    for layer in layers[1:]:
        weights += layer.torch_weights()
    return weights


def fused_lstm(x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], weights: list[torch.Tensor]):
    """Stacked LSTM layers over ``x (B, T, n_in)`` in one ``torch.lstm`` call (oneDNN on CPU, cuDNN on CUDA);
    ``weights`` from `fused_weights`, ``state`` = ``(h, c)``, each ``(layers, B, h)``. Returns outputs
    ``(B, T, h)`` and the final state.
    """
    # train=True keeps what the backward pass needs (dropout is 0, so it changes nothing else)
    out, h, c = torch.lstm(x, state, weights, True, len(weights) // 4, 0.0, torch.is_grad_enabled(), False, True)
    return out, (h, c)


def la_gaussian(f: int, centre: str = "reversed", device=None, dtype=torch.float32) -> torch.Tensor:
    """The locality-aware target profile ``O ∈ R^{f×f}`` (CAGE_SPEC §2.5).

    ``O[t, i] = exp(−(i − p_t)² / (2σ²))`` with ``σ = f/2`` and ``p_t = f−1−t`` (``centre='reversed'``: decoder
    step ``t`` reconstructs input frame ``f−1−t``) or ``p_t = t`` (``centre='same'``: non-reversed targets).
    """
    t = torch.arange(f, device=device, dtype=dtype)
    p = (f - 1 - t) if centre == "reversed" else t
    sigma = f / 2.0
    i = torch.arange(f, device=device, dtype=dtype)
    return torch.exp(-((i[None, :] - p[:, None]) ** 2) / (2 * sigma**2))  # (f, f): rows = decoder steps


# --------------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------------
@dataclass
class EncoderConfig:
    """Everything needed to rebuild the encoder from a checkpoint (stored as ``asdict`` in ``encoder.json``)."""

    J: int = 20  # joints per frame: 20 BIWI/IAS/KGBD (Kinect v1), 25 KS20, 14 CASIA-B, 18 UCalgary
    f: int = 6  # window length in frames (`--length`)
    hidden: int = 256  # LSTM / attention width (`rnn_size` in the original)
    head_hidden: int = 256  # contrastive projection head: 256f -> head_hidden -> ReLU -> head_dim
    head_dim: int = 256
    model: str = "rev_rec"  # pretext task: rev_rec | prediction | sorting | rev_rec_plus (all three)
    attention: str = "LA"  # LA (basic attention + locality-aware alignment loss) | BA (basic attention)
    decoder_input: str = "zero"  # zero: the original's all-zero decoder inputs (§2.3) | teacher: (0, y_1..y_{f-1})
    forget_bias: float = 1.0  # constant TF forget-gate offset
    head_init: str = "normal"  # normal: N(0,1) head weights as the original | default: PyTorch Linear init
    dummy_copies: bool = False  # the original's two unused variables (only change: parameter count, L2 term)
    la_centre: str = "reversed"  # LA Gaussian centre: reversed (original, §10 Q18) | task (t for non-reversed tasks)
    faithful_plus: bool = False  # rev_rec_plus as the original ran it (§10 Q3/Q3a): rev_rec models only
    axes: str = AXES  # one model per coordinate axis

    def __post_init__(self) -> None:
        if self.model not in TASKS:
            raise ConfigError(f"model must be one of {', '.join(TASKS)} (got {self.model!r})")
        if self.attention not in ("LA", "BA"):
            raise ConfigError(f"attention must be LA or BA (got {self.attention!r})")
        if self.decoder_input not in ("zero", "teacher"):
            raise ConfigError(f"decoder_input must be zero or teacher (got {self.decoder_input!r})")
        if self.decoder_input == "teacher" and "prediction" in self.tasks:
            raise ConfigError("decoder_input=teacher needs targets known at extraction time; "
                              "the prediction task's target (the next window) is not")
        if self.f < 2 or self.J < 1:
            raise ConfigError(f"need f >= 2 and J >= 1 (got f={self.f}, J={self.J})")

    @property
    def tasks(self) -> tuple[str, ...]:
        """The pretext models that are trained (one set of axis models each)."""
        if self.model != "rev_rec_plus":
            return (self.model,)
        return ("rev_rec",) if self.faithful_plus else ("rev_rec", "prediction", "sorting")

    @property
    def feature_blocks(self) -> tuple[str, ...]:
        """Which model produces each 256-wide block of a feature row, per axis (rev_rec_plus: 3 blocks)."""
        if self.model != "rev_rec_plus":
            return (self.model,)
        return ("rev_rec", "rev_rec", "rev_rec") if self.faithful_plus else ("rev_rec", "prediction", "sorting")

    def task_attention(self, task: str) -> str:
        """rev_rec_plus trains its rev_rec model with `attention` and the other two with BA (§2.4)."""
        if self.model == "rev_rec_plus" and task != "rev_rec":
            return "BA"
        return self.attention

    def la_profile_centre(self, task: str) -> str:
        if self.la_centre == "reversed" or task == "rev_rec":
            return "reversed"
        return "same"

    @property
    def d_ap(self) -> int:
        """Width of one frame-level (AP) CAGE row: ``hidden × blocks × axes`` (768 for rev_rec)."""
        return self.hidden * len(self.feature_blocks) * len(self.axes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        return config_from_dict(cls, d, "encoder")


# --------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------
class AxisModel(nn.Module):
    """One axis model: 2-layer LSTM encoder, 2-layer LSTM decoder with Luong "general" attention and input
    feeding (TF ``AttentionWrapper``, linear attention layer), output layer, contrastive projection head.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        J, h, f = cfg.J, cfg.hidden, cfg.f
        self.J, self.h, self.f = J, h, f
        self.enc1 = TFLSTMLayer(J, h, cfg.forget_bias)
        self.enc2 = TFLSTMLayer(h, h, cfg.forget_bias)
        self.dec1 = TFLSTMLayer(J + h, h, cfg.forget_bias)  # input [y_in ; ã_{t−1}]
        self.dec2 = TFLSTMLayer(h, h, cfg.forget_bias)
        self.memory = nn.Linear(h, h, bias=False)  # W_m: keys k_i = W_m h_i
        self.attn_layer = nn.Linear(2 * h, h, bias=False)  # W_a: ã_t = W_a [s_t ; c_t], no tanh (§10 Q16)
        self.out = nn.Linear(h, J)  # ŷ_t = W_o ã_t + b_o
        self.head = nn.Sequential(nn.Linear(f * h, cfg.head_hidden), nn.ReLU(), nn.Linear(cfg.head_hidden, cfg.head_dim))
        nn.init.xavier_uniform_(self.memory.weight)  # TF default glorot-uniform
        nn.init.xavier_uniform_(self.attn_layer.weight)
        nn.init.trunc_normal_(self.out.weight, std=0.1, a=-0.2, b=0.2)
        nn.init.zeros_(self.out.bias)
        if cfg.head_init == "normal":
            for lin in (self.head[0], self.head[2]):
                nn.init.normal_(lin.weight, 0.0, 1.0)
                nn.init.zeros_(lin.bias)
        if cfg.dummy_copies:
            # train.py:597-598 builds copies of the encoder layer-1 kernel and layer-2 bias that nothing reads;
            # they only count as parameters and in the L2 term. Kept to reproduce 8,474,172 parameters.
            self.dummy_kernel = nn.Parameter(self.enc1.kernel.detach().clone())
            self.dummy_bias = nn.Parameter(self.enc2.bias.detach().clone())

    def encode(self, x: torch.Tensor):
        """``x (B, f, J)`` -> top-layer outputs ``H (B, f, h)`` and the final state ``(h, c)``, each ``(2, B, h)``
        (both encoder layers in one fused `fused_lstm` call)."""
        zeros = x.new_zeros(2, x.shape[0], self.h)
        return fused_lstm(x, (zeros, zeros), fused_weights([self.enc1, self.enc2]))

    def decode(self, H: torch.Tensor, state, y_in: torch.Tensor | None = None):
        """Attention decoder over ``f`` steps (each decoder layer's step one fused ``torch.lstm_cell``, the op
        behind ``nn.LSTMCell``).

        ``state`` is the encoder's final ``(h, c)``; ``y_in (B, f, J)`` are the decoder inputs (None = zeros, the
        original's behaviour). Returns the attention matrix ``A (B, f, f)`` (rows = decoder steps), the context
        vectors ``C (B, f, h)`` and ``Ŷ (B, f, J)``.

        One step at a time, a ``torch.lstm`` call (oneDNN) costs several times the cell's arithmetic, mostly in
        its backward pass (issue #16: 5.3 ms per call against ~1 ms for the cell), so the decoder uses the cell op.
        """
        B, f, _ = H.shape
        keys = self.memory(H)  # (B, f, h)
        att = H.new_zeros(B, self.h)  # ã_0
        # decoder layer 1 reads [y_in ; ã_{t−1}]; zero inputs contribute nothing, so their kernel rows are skipped
        w1 = self.dec1.torch_weights(slice(self.J, self.J + self.h) if y_in is None else None)
        w2 = self.dec2.torch_weights()
        (h0, c0) = state
        s1, s2 = (h0[0], c0[0]), (h0[1], c0[1])
        A, C, Y = [], [], []
        for t in range(f):
            inp = att if y_in is None else torch.cat([y_in[:, t], att], dim=-1)  # input feeding
            s1 = torch.lstm_cell(inp, s1, *w1)
            s2 = torch.lstm_cell(s1[0], s2, *w2)
            h2 = s2[0]
            e = torch.bmm(keys, h2.unsqueeze(-1)).squeeze(-1)  # (B, f) Luong general score
            alpha = torch.softmax(e, dim=-1)
            ctx = torch.bmm(alpha.unsqueeze(1), H).squeeze(1)  # (B, h)
            att = self.attn_layer(torch.cat([h2, ctx], dim=-1))  # (B, h)
            A.append(alpha)
            C.append(ctx)
            Y.append(self.out(att))
        return torch.stack(A, 1), torch.stack(C, 1), torch.stack(Y, 1)

    def forward(self, x: torch.Tensor, y_in: torch.Tensor | None = None):
        H, state = self.encode(x)
        return self.decode(H, state, y_in)

    def forward_reference(self, x: torch.Tensor, y_in: torch.Tensor | None = None):
        """`forward` written out cell by cell with the TF LSTM semantics of `TFLSTMLayer.step` (slower; the
        reference the fused kernels are tested against)."""
        B, f, _ = x.shape
        zeros = x.new_zeros(B, self.h)
        H1, s1 = self.enc1.run(x, zeros, zeros)
        H, s2 = self.enc2.run(H1, zeros, zeros)
        (h1, c1), (h2, c2) = s1, s2
        keys = self.memory(H)
        att = H.new_zeros(B, self.h)
        A, C, Y = [], [], []
        for t in range(f):
            inp = att if y_in is None else torch.cat([y_in[:, t], att], dim=-1)
            w = self.dec1.kernel[self.J: self.J + self.h] if y_in is None else self.dec1.kernel[: self.J + self.h]
            h1, c1 = self.dec1.step(inp @ w + self.dec1.bias, h1, c1)
            h2, c2 = self.dec2.step(self.dec2.project_input(h1), h2, c2)
            alpha = torch.softmax(torch.bmm(keys, h2.unsqueeze(-1)).squeeze(-1), dim=-1)
            ctx = torch.bmm(alpha.unsqueeze(1), H).squeeze(1)
            att = self.attn_layer(torch.cat([h2, ctx], dim=-1))
            A.append(alpha)
            C.append(ctx)
            Y.append(self.out(att))
        return torch.stack(A, 1), torch.stack(C, 1), torch.stack(Y, 1)

    def project(self, C: torch.Tensor) -> torch.Tensor:
        """Contrastive projection ``z = W_2 ReLU(W_1 vec(C) + b_1) + b_2``: ``(B, f, h) -> (B, head_dim)``."""
        return self.head(C.flatten(1))


class CageEncoder(nn.Module):
    """All axis models of a configuration: ``models['<task>_<axis>']`` (e.g. ``rev_rec_x``)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.models = nn.ModuleDict({key(t, a): AxisModel(cfg) for t in cfg.tasks for a in cfg.axes})

    def keys(self) -> list[str]:
        return list(self.models.keys())

    def _apply(self, fn, *args, **kwargs):  # .to()/.cuda()/.float(): drop the stacked copy (and its memory)
        self.__dict__.pop("_stack", None)
        self.__dict__.pop("_stack_sig", None)
        return super()._apply(fn, *args, **kwargs)

    def decoder_inputs(self, target: torch.Tensor) -> torch.Tensor | None:
        """Decoder inputs for a target ``(B, f, J)``: None (zeros) or teacher forcing ``(0, y_1..y_{f−1})``."""
        if self.cfg.decoder_input == "zero":
            return None
        return torch.cat([torch.zeros_like(target[:, :1]), target[:, :-1]], dim=1)

    @torch.no_grad()
    def contexts(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Context matrices ``C (B, f, h)`` of every model for normalised windows ``(B, f, J, 3)``.

        Feature extraction runs every model on the unshuffled window with zero decoder inputs (or, with
        teacher forcing, with inputs from the task's own target: the reversed window for rev_rec, the window
        itself for sorting). All models run in one pass, batched over the model dimension (the per-step Python
        overhead is paid once, not once per axis and task); `contexts_per_model` is the plain reference.
        """
        names = self.keys()
        W = self._stacked_weights()
        xs, ys = [], []
        for task in self.cfg.tasks:
            for ai, _ in enumerate(self.cfg.axes):
                x = windows[..., ai]  # (B, f, J)
                xs.append(x)
                ys.append(self.decoder_inputs(extraction_target(task, x)))
        X = torch.stack(xs)  # (M, B, f, J)
        Y = None if ys[0] is None else torch.stack(ys)
        M, B, f, J = X.shape
        h = self.cfg.hidden
        # The fewest, cheapest tensor ops per step (at small batches dispatch cost, not arithmetic, dominates):
        # the forget bias is folded into the stacked biases, the recurrent matmul is fused with the input
        # pre-activations (baddbmm), the first step skips the zero state, and one sigmoid covers all four gates:
        # the j-gate columns are stacked pre-scaled by 2, and tanh(x) = 2·sigmoid(2x) − 1 (this CPU build's
        # tanh is several times slower than its sigmoid).

        def step(g, cc):  # TF LSTM cell on pre-activations g (M, B, 4h) = x K_x + h K_h + b (j-gate doubled)
            s = torch.sigmoid(g)
            i = s[..., :h]
            ij = torch.addcmul(i.neg(), i, s[..., h: 2 * h], value=2.0)  # i · tanh(j)
            cc = ij if cc is None else torch.addcmul(ij, s[..., 2 * h: 3 * h], cc)
            o = s[..., 3 * h:]
            return torch.addcmul(o.neg(), o, torch.sigmoid(cc * 2.0), value=2.0), cc  # o · tanh(c)

        def run(inp, Kx, Kh, b):  # a whole layer over the f steps: inp (M, B, f, n_in)
            xp = torch.baddbmm(b[:, None], inp.reshape(M, B * f, -1), Kx).reshape(M, B, f, -1)
            hh, cc = step(xp[:, :, 0], None)
            outs = [hh]
            for t in range(1, f):
                hh, cc = step(torch.baddbmm(xp[:, :, t], hh, Kh), cc)
                outs.append(hh)
            return torch.stack(outs, dim=2), (hh, cc)

        H1, (h1, c1) = run(X, *W["enc1"])
        H, (h2, c2) = run(H1, *W["enc2"])
        keys = torch.bmm(H.reshape(M, B * f, h), W["memory"]).reshape(M * B, f, h)
        Hb = H.reshape(M * B, f, h)
        d1x, d1a, d1h, d1b = W["dec1"]
        d2x, d2h, d2b = W["dec2"]
        y_proj = None if Y is None else torch.bmm(Y.reshape(M, B * f, J), d1x).reshape(M, B, f, -1)
        C = []
        att = None  # ã_0 = 0: the first step's input feeding contributes nothing
        for t in range(f):
            xp = d1b[:, None].expand(M, B, -1) if att is None else torch.baddbmm(d1b[:, None], att, d1a)
            if y_proj is not None:
                xp = xp + y_proj[:, :, t]
            h1, c1 = step(torch.baddbmm(xp, h1, d1h), c1)
            h2, c2 = step(torch.baddbmm(torch.baddbmm(d2b[:, None], h1, d2x), h2, d2h), c2)
            alpha = torch.softmax(torch.bmm(keys, h2.reshape(M * B, h, 1)), dim=1)  # (M·B, f, 1)
            ctx = torch.bmm(Hb.transpose(1, 2), alpha).reshape(M, B, h)
            if t < self.cfg.f - 1:  # the last attention vector would only feed a step that does not exist
                att = torch.bmm(torch.cat([h2, ctx], dim=-1), W["attn"])
            C.append(ctx)
        C = torch.stack(C, dim=2)  # (M, B, f, h)
        return {k: C[m] for m, k in enumerate(names)}

    def _stacked_weights(self) -> dict:
        """The models' weights stacked along a leading model dimension for `contexts`: forget bias folded into
        the biases, j-gate columns doubled.

        Rebuilt only when a weight changed: in place (training steps and ``load_state_dict`` bump tensor
        versions) or by a new parameter object (``load_state_dict(assign=True)``, a replaced attribute).
        """
        ms = [self.models[k] for k in self.keys()]
        sig = tuple((id(p), p.data_ptr(), p._version) for m in ms for p in m.parameters())
        if getattr(self, "_stack_sig", None) != sig:
            J, h = ms[0].J, ms[0].h
            ref = ms[0].enc1.kernel

            def st(get):
                return torch.stack([get(m) for m in ms]).detach()

            # gate order i, j, f, o: the j-gate pre-activation is doubled (see contexts)
            gate = torch.ones(4 * h, device=ref.device, dtype=ref.dtype)
            gate[h: 2 * h] = 2.0

            def kern(get):
                return st(get) * gate

            def bias(cell):  # TF adds forget_bias to the forget gate's pre-activation
                b = st(lambda m: getattr(m, cell).bias)
                fb = torch.tensor([getattr(m, cell).forget_bias for m in ms], device=b.device, dtype=b.dtype)
                return torch.cat([b[:, :2 * h], b[:, 2 * h: 3 * h] + fb[:, None], b[:, 3 * h:]], dim=1) * gate

            self._stack = {
                "enc1": (kern(lambda m: m.enc1.kernel[:J]), kern(lambda m: m.enc1.kernel[J:]), bias("enc1")),
                "enc2": (kern(lambda m: m.enc2.kernel[:h]), kern(lambda m: m.enc2.kernel[h:]), bias("enc2")),
                "dec1": (kern(lambda m: m.dec1.kernel[:J]), kern(lambda m: m.dec1.kernel[J:J + h]),
                         kern(lambda m: m.dec1.kernel[J + h:]), bias("dec1")),
                "dec2": (kern(lambda m: m.dec2.kernel[:h]), kern(lambda m: m.dec2.kernel[h:]), bias("dec2")),
                "memory": st(lambda m: m.memory.weight.t()),
                "attn": st(lambda m: m.attn_layer.weight.t()),
            }
            self._stack_sig = sig
        return self._stack

    @torch.no_grad()
    def contexts_per_model(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reference for `contexts`: each model run on its own (same result, slower)."""
        out = {}
        for task in self.cfg.tasks:
            for ai, a in enumerate(self.cfg.axes):
                x = windows[..., ai]  # (B, f, J)
                target = extraction_target(task, x)
                _, C, _ = self.models[key(task, a)](x, self.decoder_inputs(target))
                out[key(task, a)] = C
        return out

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def key(task: str, axis: str) -> str:
    return f"{task}_{axis}"


def parameter_breakdown(cfg: EncoderConfig) -> list[tuple[str, int]]:
    """Analytic parameter count per block of ONE axis model (CAGE_SPEC §9), in the table's order."""
    J, h, f = cfg.J, cfg.hidden, cfg.f
    rows = [
        ("Encoder LSTM layer 1", (J + h) * 4 * h + 4 * h),
        ("Encoder LSTM layer 2", 2 * h * 4 * h + 4 * h),
        ("Decoder LSTM layer 1 (input J + attention)", (J + 2 * h) * 4 * h + 4 * h),
        ("Decoder LSTM layer 2", 2 * h * 4 * h + 4 * h),
        ("Attention memory layer W_m", h * h),
        ("Attention layer W_a", 2 * h * h),
        ("Output layer", h * J + J),
        ("Contrastive head", f * h * cfg.head_hidden + cfg.head_hidden + cfg.head_hidden * cfg.head_dim + cfg.head_dim),
    ]
    if cfg.dummy_copies:
        rows.append(("Dummy copies lstm_weights_layer_1/2", (J + h) * 4 * h + 4 * h))
    return rows


def macs_per_window(cfg: EncoderConfig) -> dict[str, int]:
    """Analytic multiply-accumulates of one training forward pass of ONE axis model for one window (§9)."""
    J, h, f = cfg.J, cfg.hidden, cfg.f
    enc = f * ((J + h) * 4 * h + 2 * h * 4 * h)
    keys = f * h * h
    dec_step = (J + 2 * h) * 4 * h + 2 * h * 4 * h + 2 * f * h + 2 * h * h + h * J
    head = f * h * cfg.head_hidden + cfg.head_hidden * cfg.head_dim
    return {"encoder": enc, "attention keys": keys, "decoder + attention + output": f * dec_step, "head": head}

