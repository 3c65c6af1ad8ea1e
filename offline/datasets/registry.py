"""The one list of datasets: name, joint layout, joints, default window length, original training settings,
splits, and what each command can do with it. Every command's ``--dataset`` flag parses through
`dataset_arg`; every other module reads these entries instead of keeping its own list.

Original settings (encoder epochs, RN epochs, temperature, CAGE_SPEC §2.6, §3, §5). UCALGARY is ours (not in
the paper): 8 encoder epochs, see ``docs/model.md``. ``CASIA_B_match`` is the CME evaluation of CASIA-B
(CAGE_SPEC §7.2): it is evaluated, not trained on its own.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from offline.errors import OfflineError


@dataclass(frozen=True)
class Dataset:
    name: str  # canonical spelling (flags are case-insensitive)
    layout: str  # joint layout of its skeletons (pose.layouts)
    joints: int  # J
    default_f: int  # window length when --length is not given
    encoder_epochs: int | None  # original encoder epochs (None: not trained on its own)
    rn_epochs: int | None  # original RN epochs
    temperature: float | None  # original contrastive temperature
    classes: int  # identities of the original training split (RN output size; `cagereid params`)
    cage_splits: tuple[str, ...]  # required split keys in the CAGE paper's layout (train first); () = none
    p2_splits: tuple[str, ...] = ()  # split keys in the retrieval (P2) layout; () = none
    raw: bool = False  # `cagereid prepare` builds it from raw recordings
    synth: bool = True  # `cagereid synth` writes it
    cage_optional: tuple[str, ...] = ()  # optional split keys in the CAGE layout (BIWI Still is ours)
    synth_frames: int = 60  # frames per synthetic walk by default (>= 2 f + rounds: every offset round gives windows)


REGISTRY: tuple[Dataset, ...] = (
    Dataset("BIWI", "kinect_v1", 20, 6, 400, 300, 0.1, 28, ("train", "Walking"),
            ("train", "Walking", "Still"), raw=True, cage_optional=("Still",)),
    Dataset("IAS", "kinect_v1", 20, 6, 400, 300, 0.1, 11, ("train", "A", "B"), ("train", "A", "B"), raw=True),
    Dataset("KGBD", "kinect_v1", 20, 6, 150, 200, 0.5, 164, ("train", "test"), ("train", "gallery", "probe"),
            raw=True),
    Dataset("KS20", "kinect_v2", 25, 6, 400, 800, 0.1, 20, ("train", "test"), ("train", "gallery", "probe"),
            raw=True, synth_frames=45),
    # CVE: per view, read_cage_dataset(root, "CASIA_B", f, view=v), v in 0..10
    Dataset("CASIA_B", "casia14", 14, 20, 100, 1000, 0.15, 124, ("train", "test")),
    Dataset("CASIA_B_match", "casia14", 14, 50, None, None, None, 124, ("train", "nm", "bg", "cl"),
            cage_optional=("test_all",), synth_frames=110),
    # ours: Run1 is the training part; Run1 again (test-style windows) is the gallery.
    Dataset("UCALGARY", "ucalgary18", 18, 6, 8, 300, 0.1, 13, (), ("train", "gallery", "same", "cross"),
            raw=True, synth=False),
)

BY_NAME: dict[str, Dataset] = {d.name: d for d in REGISTRY}
NAMES: tuple[str, ...] = tuple(BY_NAME)
#: Datasets `cagereid train` trains on (every one with original training settings).
TRAINABLE: tuple[str, ...] = tuple(d.name for d in REGISTRY if d.encoder_epochs is not None)
#: Datasets `cagereid prepare` builds from raw recordings.
RAW: tuple[str, ...] = tuple(d.name for d in REGISTRY if d.raw)
#: The public benchmarks whose owners' raw recording formats `offline.datasets.raw` reads (UCalgary has its own).
RAW_BENCHMARKS: tuple[str, ...] = tuple(n for n in RAW if n != "UCALGARY")
#: Datasets with the CAGE paper's on-disk layout (offline.datasets.cage_layout).
CAGE: tuple[str, ...] = tuple(d.name for d in REGISTRY if d.cage_splits)
#: Datasets `cagereid synth` writes.
SYNTH: tuple[str, ...] = tuple(d.name for d in REGISTRY if d.synth)


class UnknownDataset(OfflineError):
    """A dataset name that is not in the registry (or not allowed for this command)."""


def match_name(name: str, choices) -> str | None:
    """The entry of ``choices`` that ``name`` spells, ignoring case (``'biwi'`` -> ``'BIWI'``), else None."""
    return next((c for c in choices if str(name).lower() == c.lower()), None)


def canonical(name: str, allowed=NAMES) -> str:
    """``'biwi'`` -> ``'BIWI'``; a name outside ``allowed`` raises `UnknownDataset` listing them."""
    known = match_name(name, allowed)
    if known is None:
        raise UnknownDataset(f"unknown dataset {name!r}; expected one of {', '.join(allowed)}")
    return known


def get(name: str) -> Dataset:
    """The registry entry of ``name`` (any spelling)."""
    return BY_NAME[canonical(name)]


def dataset_arg(allowed=NAMES):
    """An argparse ``type=`` that accepts any spelling of the ``allowed`` names and returns the canonical one."""
    allowed = tuple(allowed)

    def parse(value: str) -> str:
        try:
            return canonical(value, allowed)
        except UnknownDataset:
            raise argparse.ArgumentTypeError(f"unknown dataset {value!r}; expected one of "
                                             f"{', '.join(allowed)} (any case)") from None

    parse.__name__ = "dataset"  # argparse names the type in its messages
    return parse
