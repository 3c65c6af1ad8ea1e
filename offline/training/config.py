"""Training configuration: `TrainConfig` (every training choice, faithful and improved modes), the YAML reader,
and `build_config`, the one place a config is built from a YAML file plus overrides (``cagereid train``,
``cagereid evaluate`` and ``cagereid bench train`` all call it).

``faithful`` reproduces the original code (CAGE_SPEC §2-§5 and §10 "F"); ``improved`` (default) fixes its
defects (``docs/model.md``). `TrainConfig.resolved()` fills the mode/dataset-dependent defaults from the
dataset registry (``offline.datasets.registry``).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

from cages.config import ConfigError, config_from_dict, load_yaml
from cages.encoder import EncoderConfig
from offline.datasets import registry


@dataclass
class TrainConfig:
    """Training choices. ``None`` = "the default of this mode/dataset" (see `resolved`)."""

    dataset: str = "BIWI"  # BIWI | IAS | KGBD | KS20 | CASIA_B | UCALGARY
    f: int = 6  # window length (`--length`)
    view: int | None = None  # KS20 cross-view split 0..4 / CASIA_B view 0..10
    mode: str = "improved"  # improved | faithful
    model: str = "rev_rec"  # rev_rec | prediction | sorting | rev_rec_plus
    attention: str = "LA"  # LA | BA
    t: float | None = None  # temperature; None = dataset value (0.1; KGBD 0.5; CASIA_B 0.15). Faithful forces it
    decoder_input: str = "zero"  # zero (original) | teacher
    epochs: int | None = None  # encoder epochs; None = original (BIWI/IAS/KS20 400, KGBD 150, CASIA_B 100)
    batch_size: int = 128
    lr: float = 5e-4  # Adam, constant
    clip: float = 5.0  # element-wise gradient clipping to [-clip, clip]
    l2: float | None = None  # λ of the explicit L2 term Σ½‖θ‖²; None: 0.02 faithful, 0 improved
    weight_decay: float | None = None  # decoupled (AdamW) weight decay; None: 0 faithful, 1e-4 improved
    positives: str | None = None  # adjacent (file neighbours, no shuffle) | metadata (same recording, |Δstart|≤max_shift)
    max_shift: int = 30  # improved positives: start frames at most this far apart (about one gait cycle)
    reduction: str | None = None  # loss reduction over the batch: sum (faithful) | mean (improved)
    rec_weight: float = 1.0  # weights of L_rec, L_LA, L_C (all 1 in the original)
    la_weight: float = 1.0
    con_weight: float = 1.0
    val_frac: float | None = None  # tail of each recording held out for selection; None: 0 faithful, 0.15 improved
    facing: bool = False  # improved mode: turn every window so the body faces +x (cages.features.normalise_windows)
    centre: str | None = None  # none | root (layout hip centre) | joint0; None: faithful none (CASIA_B joint0), improved root
    bone_weight: float | None = None  # bone-length cue in embed (and RN rows); None: 0 faithful, 0.5 improved
    readout: str | None = None  # what the retrieval embedding reads: ap | head; None: ap faithful, head improved
    encoder_subset: bool | None = None  # BIWI: encoder sees the first N−⌈N/3⌉ windows only; None: faithful True
    rn_epochs: int | None = None  # None = original (BIWI/IAS 300, KGBD 200, KS20 800, CASIA_B 1000)
    rn_batch_size: int = 128
    rn_lr: float = 5e-4
    rn_weight_decay: float | None = None  # None: 0 faithful, 1e-3 improved (AdamW)
    rn_dropout: float | None = None  # None: 0 faithful, 0.2 improved
    rn_select: str | None = None  # probe (original: best epoch on the probe set) | val | last
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on CPU)
    hidden: int = 256  # LSTM/attention width (256 in the original; smaller only for quick tests)

    def __post_init__(self) -> None:
        if self.dataset not in registry.TRAINABLE:
            raise ConfigError(f"dataset must be one of {', '.join(registry.TRAINABLE)} (got {self.dataset!r})")
        if self.mode not in ("faithful", "improved"):
            raise ConfigError(f"mode must be faithful or improved (got {self.mode!r})")
        if self.positives not in (None, "adjacent", "metadata"):
            raise ConfigError(f"positives must be adjacent or metadata (got {self.positives!r})")
        if self.rn_select not in (None, "probe", "val", "last"):
            raise ConfigError(f"rn_select must be probe, val or last (got {self.rn_select!r})")
        if self.readout not in (None, "ap", "head"):
            raise ConfigError(f"readout must be ap or head (got {self.readout!r})")
        if self.centre not in (None, "none", "root", "joint0"):
            raise ConfigError(f"centre must be none, root or joint0 (got {self.centre!r})")

    @property
    def faithful(self) -> bool:
        return self.mode == "faithful"

    def resolved(self) -> "TrainConfig":
        """A copy with every ``None`` replaced by its mode/dataset default (what a run actually used)."""
        F = self.faithful
        ds = self.dataset
        d = registry.get(ds)
        r = dict(
            t=d.temperature if (F and ds != "CASIA_B") or self.t is None else self.t,
            epochs=d.encoder_epochs if self.epochs is None else self.epochs,
            l2=(0.02 if F else 0.0) if self.l2 is None else self.l2,
            weight_decay=(0.0 if F else 1e-4) if self.weight_decay is None else self.weight_decay,
            positives=("adjacent" if F else "metadata") if self.positives is None else self.positives,
            reduction=("sum" if F else "mean") if self.reduction is None else self.reduction,
            val_frac=(0.0 if F else 0.15) if self.val_frac is None else self.val_frac,
            centre=(("joint0" if ds == "CASIA_B" else "none") if F else "root") if self.centre is None else self.centre,
            bone_weight=(0.0 if F else 0.5) if self.bone_weight is None else self.bone_weight,
            readout=("ap" if F else "head") if self.readout is None else self.readout,
            encoder_subset=(F and ds == "BIWI") if self.encoder_subset is None else self.encoder_subset,
            rn_epochs=(d.rn_epochs if F else min(d.rn_epochs, 100)) if self.rn_epochs is None else self.rn_epochs,
            rn_weight_decay=(0.0 if F else 1e-3) if self.rn_weight_decay is None else self.rn_weight_decay,
            rn_dropout=(0.0 if F else 0.2) if self.rn_dropout is None else self.rn_dropout,
            rn_select=("probe" if F else "val") if self.rn_select is None else self.rn_select,
        )
        return replace(self, **r)

    def encoder_config(self, J: int) -> EncoderConfig:
        F = self.faithful
        return EncoderConfig(J=J, f=self.f, hidden=self.hidden, model=self.model, attention=self.attention,
                             decoder_input=self.decoder_input, head_init="normal" if F else "default",
                             dummy_copies=F, la_centre="reversed" if F else "task", faithful_plus=F)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return config_from_dict(cls, d, "training")

    @property
    def layout(self) -> str:
        """Joint layout of the dataset's skeletons."""
        return registry.get(self.dataset).layout


def load_yaml_config(path: str | os.PathLike) -> dict:
    """Read a training config (a file, or the name of a shipped one such as ``train_ucalgary``): a flat mapping of
    `TrainConfig` fields, checked by the one config validator (unknown keys and wrong types name the key)."""
    from cagereid import configs

    try:
        p = configs.resolve(path)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    data = load_yaml(p, "training")
    from cages.config import check_types

    check_types(TrainConfig, data, "training", origin=str(p))
    return data


def build_config(config: str | os.PathLike | dict | TrainConfig | None = None, **overrides) -> TrainConfig:
    """The one way to build a `TrainConfig`: defaults < ``config`` (a YAML path or shipped name, a dict of fields,
    or a `TrainConfig`) < ``overrides`` whose value is not None."""
    if isinstance(config, TrainConfig):
        values, origin = config.to_dict(), None
    elif isinstance(config, dict):
        values, origin = dict(config), None
    elif config:
        values, origin = load_yaml_config(config), str(config)
    else:
        values, origin = {}, None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(TrainConfig, values, "training", origin=origin)
