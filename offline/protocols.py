"""Which splits every benchmark has, and which gallery/probe pairs are evaluated: module-level data.

Two on-disk layouts exist (``DATA_PREP.md``):

* ``cage``: the CAGE paper's pre-processed layout (``CAGE_SPEC.md`` §1.1), read by
  `offline.datasets.cage_layout.read_cage_dataset`. P1 (classifier) protocol: the training split is
  also the gallery; every test split is a probe set.
* ``p2``: the retrieval layout of the authors' later repositories (``DATA_PREP.md`` §4), read by
  `offline.datasets.p2_layout.read_p2_dataset`. P2 (retrieval) protocol as those repositories run
  it (``DATA_PREP.md`` §5): gallery = the training windows (BIWI, IAS) or the ``gallery`` split (KGBD,
  KS20); probe = the probe split(s).

Split names are the keys of the ``dict[str, WindowSet]`` the readers return. A `Protocol` names one
evaluated pair; ``exclude_same_recording`` is set where gallery and probe come from the same walks
(CASIA-B same-condition matching excludes the query's own entries, ``DATA_PREP.md`` §5).

UCalgary (real data in ``../shared/data/ucalgary_gait``, ``data/README.md``): gallery = Run1, probes =
Run2 (same condition) and Run3-6 (simulated limp, cross condition); the duplicate identity sub10 is
dropped by the reader.
"""
from __future__ import annotations

from dataclasses import dataclass

from offline.datasets import registry
from offline.errors import OfflineError

#: Joint layout, joints, raw-recording datasets and split keys per dataset: views of the one dataset registry
#: (``offline.datasets.registry``). CAGE split keys are as `read_cage_dataset` returns them (BIWI ``Still`` is
#: ours); P2 split keys: ``train`` (``train_npy_data``) plus the ``test_npy_data/<split>`` folders.
LAYOUT_OF: dict[str, str] = {d.name: d.layout for d in registry.REGISTRY}
JOINTS: dict[str, int] = {d.name: d.joints for d in registry.REGISTRY}
RAW_DATASETS: tuple[str, ...] = registry.RAW
P2_SPLITS: dict[str, tuple[str, ...]] = {d.name: d.p2_splits for d in registry.REGISTRY if d.p2_splits}
CAGE_SPLITS: dict[str, tuple[str, ...]] = {d.name: d.cage_splits + d.cage_optional for d in registry.REGISTRY
                                           if d.cage_splits}

#: CASIA-B CVE views (index v <-> 18*v degrees) and CME conditions.
CASIA_B_VIEWS: tuple[int, ...] = tuple(range(11))
CASIA_B_CME_PAIRS: tuple[tuple[str, str], ...] = (("nm", "nm"), ("bg", "bg"), ("cl", "cl"), ("cl", "nm"), ("bg", "nm"))

#: UCalgary runs per role (Run7 is experimental and ignored; data/README.md).
UCALGARY_RUNS: dict[str, tuple[int, ...]] = {"gallery": (1,), "same": (2,), "cross": (3, 4, 5, 6)}


@dataclass(frozen=True)
class Protocol:
    """One evaluated gallery/probe pair of one dataset in one on-disk layout."""

    name: str  # how reports label it, e.g. "BIWI-Walking", "CASIA_B-CME-cl.nm", "UCALGARY-cross"
    dataset: str  # "BIWI", "IAS", "KGBD", "KS20", "CASIA_B", "CASIA_B_match", "UCALGARY"
    layout: str  # "p2" | "cage" | "ucalgary" (windows built from the CSVs by offline.datasets.ucalgary)
    gallery: str  # split key of the gallery
    probe: str  # split key of the probe set
    view: int | None = None  # CASIA_B CVE view (read_cage_dataset(..., view=v))
    exclude_same_recording: bool = False  # drop gallery windows of the probe's own recording
    runs_gallery: tuple[int, ...] = ()  # UCalgary only
    runs_probe: tuple[int, ...] = ()  # UCalgary only


def _p2(name: str, ds: str, gallery: str, probe: str) -> Protocol:
    return Protocol(name, ds, "p2", gallery, probe)


#: Retrieval (P2) pairs per dataset, as the authors' later repositories evaluate them (DATA_PREP.md §5).
P2_PROTOCOLS: dict[str, tuple[Protocol, ...]] = {
    "BIWI": (_p2("BIWI-Walking", "BIWI", "train", "Walking"), _p2("BIWI-Still", "BIWI", "train", "Still")),
    "IAS": (_p2("IAS-A", "IAS", "train", "A"), _p2("IAS-B", "IAS", "train", "B")),
    "KGBD": (_p2("KGBD", "KGBD", "gallery", "probe"),),
    "KS20": (_p2("KS20", "KS20", "gallery", "probe"),),
    "UCALGARY": (_p2("UCALGARY-same", "UCALGARY", "gallery", "same"),
                 _p2("UCALGARY-cross", "UCALGARY", "gallery", "cross")),
}

#: Classifier (P1) protocols on the CAGE layout: the training split is the gallery / RN training set.
CAGE_PROTOCOLS: dict[str, tuple[Protocol, ...]] = {
    "BIWI": (Protocol("BIWI-Walking", "BIWI", "cage", "train", "Walking"),
             Protocol("BIWI-Still", "BIWI", "cage", "train", "Still")),
    "IAS": (Protocol("IAS-A", "IAS", "cage", "train", "A"), Protocol("IAS-B", "IAS", "cage", "train", "B")),
    "KGBD": (Protocol("KGBD", "KGBD", "cage", "train", "test"),),
    "KS20": (Protocol("KS20", "KS20", "cage", "train", "test"),),
    # CVE: one encoder/RN per view, train vs test of that view.
    "CASIA_B": tuple(Protocol(f"CASIA_B-CVE-{18 * v}deg", "CASIA_B", "cage", "train", "test", view=v)
                     for v in CASIA_B_VIEWS),
    # CME: probe condition vs gallery condition; same-condition pairs exclude the query's own walk.
    "CASIA_B_match": tuple(Protocol(f"CASIA_B-CME-{p}.{g}", "CASIA_B_match", "cage", g, p,
                                    exclude_same_recording=(p == g))
                           for p, g in CASIA_B_CME_PAIRS),
}

#: UCalgary real-data protocol (windows from the CSVs, `offline.datasets.ucalgary.ucalgary_windows`).
UCALGARY_PROTOCOLS: tuple[Protocol, ...] = (
    Protocol("UCALGARY-same", "UCALGARY", "ucalgary", "run1", "run2",
             runs_gallery=UCALGARY_RUNS["gallery"], runs_probe=UCALGARY_RUNS["same"]),
    Protocol("UCALGARY-cross", "UCALGARY", "ucalgary", "run1", "run3-6",
             runs_gallery=UCALGARY_RUNS["gallery"], runs_probe=UCALGARY_RUNS["cross"]),
)



match_name = registry.match_name
canonical_dataset = registry.canonical


def p2_gallery_probe_pairs(dataset: str) -> list[tuple[str, str, str]]:
    """``[(name, gallery_split, probe_split)]``, e.g. BIWI ->
    ``[("BIWI-Walking", "train", "Walking"), ("BIWI-Still", "train", "Still")]``."""
    ds = canonical_dataset(dataset)
    if ds not in P2_PROTOCOLS:
        raise OfflineError(f"{ds} has no retrieval (P2) layout; P2 datasets: {', '.join(P2_PROTOCOLS)}")
    return [(p.name, p.gallery, p.probe) for p in P2_PROTOCOLS[ds]]


def protocols(dataset: str, layout: str) -> tuple[Protocol, ...]:
    """All `Protocol`s of ``dataset`` in ``layout`` (``'p2'``, ``'cage'`` or ``'ucalgary'``)."""
    ds = canonical_dataset(dataset)
    table = {"p2": P2_PROTOCOLS, "cage": CAGE_PROTOCOLS}.get(layout)
    if layout == "ucalgary":
        if ds != "UCALGARY":
            raise OfflineError(f"layout 'ucalgary' is for UCALGARY only, not {ds}")
        return UCALGARY_PROTOCOLS
    if table is None:
        raise OfflineError(f"unknown layout {layout!r}; expected p2, cage or ucalgary")
    if ds not in table:
        raise OfflineError(f"{ds} has no {layout} layout")
    return table[ds]
