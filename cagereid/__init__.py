"""cagereid: person re-identification from 3D skeletons with self-supervised gait encodings (CAGEs).

This package holds the command line (``cagereid.cli``, also ``python -m cagereid``), the speed benchmarks
(``cagereid.bench``) and the shipped configuration files (``cagereid.configs``, the repository's ``configs/``
folder). The model is in ``cages``, pose estimation in ``pose``, the live pipeline in ``stream`` and the
offline jobs in ``offline``.
"""
from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("cagereid")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
