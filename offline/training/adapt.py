"""Label-free adaptation to a site (``cagereid train --tracks``): fine-tune an encoder on the skeleton tracks of a
site's own unlabeled footage.

The windows come from `offline.datasets.tracks` (every track, converted and filled as live does); positives are
windows of the same track (one ``recording`` per ``(file, track)``), negatives windows of other tracks in the
batch. There are no identities, so there is no recognition network: the job writes an encoder model folder
(``encoder.pt`` + ``encoder.json``) that ``live``/``enroll``/``evaluate --tracks`` take with ``--model``.

Settings: the init model's own training settings (its width, window length, layout, pretext, embedding readout
and bone cue), then the site defaults `ADAPT_DEFAULTS`, then a ``--config`` YAML, then explicit flags.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from cages.config import ConfigError
from offline.datasets.base import DatasetError
from offline.training.config import TrainConfig, build_config, load_yaml_config

# A site's footage is small and the model is already trained; 20 epochs (the checkpoint with the best validation
# loss is kept) beat 5 on held-out development clips (README, "The live-domain encoder": window Rank-1 69.4 against
# 62.8). A track is one person from start to end, so every window of it is a positive of every other (max_shift
# larger than any track).
ADAPT_DEFAULTS = {"epochs": 20, "positives": "metadata", "max_shift": 100_000}
MIN_WINDOWS = 64  # fewer cannot fill a contrastive batch; the run would fit noise
MIN_TRACKS = 2  # negatives come from other tracks


def init_settings(init: str | os.PathLike) -> tuple[dict, dict]:
    """``(TrainConfig fields, encoder.json)`` of the model folder ``init``: what to keep when fine-tuning it.
    A folder without a readable ``encoder.pt`` + ``encoder.json`` is a `ConfigError`."""
    folder = Path(init)
    pt, js = folder / "encoder.pt", folder / "encoder.json"
    if not folder.is_dir():
        raise ConfigError(f"--init {folder}: no such model folder")
    if not pt.is_file() or not js.is_file():
        raise ConfigError(f"--init {folder}: not a model folder (need encoder.pt and encoder.json)")
    try:
        meta = json.loads(js.read_text())
        enc = meta["encoder"]
        f = int(meta.get("f", enc["f"]))
        if not meta.get("layout"):
            raise KeyError("layout")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--init {js}: unreadable model metadata ({exc})") from None
    names = set(TrainConfig.__dataclass_fields__)
    values = {k: v for k, v in (meta.get("train_config") or {}).items()
              if k in names and k not in ("device", "seed", "deterministic", "epochs", "view")}
    values.update(f=f, hidden=int(enc["hidden"]), model=enc["model"], attention=enc["attention"],
                  decoder_input=enc.get("decoder_input", "zero"),
                  mode="faithful" if enc.get("dummy_copies") else values.get("mode", "improved"))
    feats = meta.get("features") or {}
    if "bone_weight" in feats:  # what the model's embedding uses now (may differ from its training run)
        values["bone_weight"] = float(feats["bone_weight"])
    if feats.get("readout"):
        values["readout"] = feats["readout"]
    from offline.datasets import registry

    if values.get("dataset") not in registry.TRAINABLE:
        values["dataset"] = "BIWI"  # only the registry defaults (temperature) are read from it
    return values, meta


def adapt_config(init: str | os.PathLike, config: str | os.PathLike | None = None, **overrides) -> tuple[TrainConfig, dict]:
    """``(TrainConfig, init encoder.json)``: init model's settings < `ADAPT_DEFAULTS` < ``config`` < overrides.
    A shape the init weights do not have (f, width, pretext) is refused when they are loaded
    (`offline.training.encoder.load_initial_weights`)."""
    values, meta = init_settings(init)
    values.update(ADAPT_DEFAULTS)
    if config:
        values.update(load_yaml_config(config))
    cfg = build_config(values, **overrides)
    return cfg, meta


def adapt_to_tracks(tracks, out: str | os.PathLike, init: str | os.PathLike | None = None,
                    config: str | os.PathLike | None = None, progress: bool = True, resume: bool = False,
                    command: str | None = None, stride: int = 1, print_fn=print, **overrides) -> dict:
    """The whole ``cagereid train --tracks`` job: windows of every track of ``tracks`` (files or folders), fine-tune
    the encoder of ``init`` (default: the shipped model) on them without labels, write ``out/encoder.pt`` +
    ``encoder.json`` (with the command, the init model and the tracks files in its metadata). Returns a summary.

    One-line errors (`DatasetError`/`ConfigError`): no tracks files, a file that is not a tracks file, fewer than
    `MIN_WINDOWS` windows or `MIN_TRACKS` tracks with windows, a missing or foreign init model."""
    from cages import pretrained
    from cages.features import resolve_device
    from cages.io import write_json
    from offline.datasets.tracks import tracks_windows
    from offline.training.encoder import train_encoder

    init = Path(init) if init else Path(pretrained.LIVE_PATH)
    cfg, meta = adapt_config(init, config, **overrides)
    rcfg = cfg.resolved()
    ws = tracks_windows(tracks, meta["layout"], rcfg.f, stride)
    used = [t for t in ws.meta["tracks"] if t[2] > 0]
    if ws.n < MIN_WINDOWS or len(used) < MIN_TRACKS:
        raise DatasetError(f"too few windows to adapt: {ws.n} windows of f={rcfg.f} frames from {len(used)} of "
                           f"{len(ws.meta['tracks'])} tracks in {len(ws.meta['files'])} file(s); need at least "
                           f"{MIN_WINDOWS} windows from at least {MIN_TRACKS} tracks (more or longer footage)")
    device = resolve_device(rcfg.device)
    print_fn(f"adapting {init} ({meta['layout']}, f={rcfg.f}, width {rcfg.hidden}) on {ws.n} windows of "
             f"{len(used)} tracks in {len(ws.meta['files'])} file(s); {rcfg.epochs} epochs, device={device}")
    out = Path(out)
    train_encoder(ws, rcfg, out, rcfg.seed, device, progress, resume, command, init=init)
    js = out / "encoder.json"
    written = json.loads(js.read_text())
    written["dataset"] = "TRACKS"
    written["adapted"] = {"init": str(init.resolve()), "init_command": meta.get("command"),
                          "tracks_files": ws.meta["files"], "tracks": len(used), "windows": ws.n,
                          "positives": "windows of the same track (no labels)"}
    write_json(js, written)
    m = written.get("metrics", {})
    return {"out": str(out), "windows": ws.n, "tracks": len(used), "files": len(ws.meta["files"]),
            "train_windows": written.get("train_windows"), "val_windows": written.get("val_windows"),
            "checkpoint": written.get("checkpoint"), "first_loss": m.get("first_loss"),
            "final_loss": m.get("final_loss"), "best_val_loss": m.get("best_val_loss"), "seconds": m.get("seconds")}
