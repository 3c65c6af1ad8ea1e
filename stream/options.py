"""Flags and defaults that `live`, `demo`, `enroll` and `gallery` share (argparse only, no heavy imports)."""
from __future__ import annotations

import argparse

DEFAULT_GALLERY = "gallery.sqlite"


def add_common(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--config``, ``--device``: which encoder, which stream settings, which torch device."""
    p.add_argument("--model", default=None, help="encoder folder written by `cagereid train --out` "
                   "(default: the live-domain encoder shipped in cages/pretrained/live; demo: the small synthetic-walker encoder "
                   "in cages/pretrained)")
    p.add_argument("--config", default=None, help="stream settings: a YAML file or a shipped config name "
                   "(default: stream)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default from the config: auto)")
