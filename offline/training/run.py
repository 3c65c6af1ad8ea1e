"""The whole ``cagereid train`` job: load a dataset's windows, train the encoders (`offline.training.encoder`),
extract CAGEs and train the RN (`offline.training.rn`), write ``summary.json``.

Output folder: ``encoder.pt``/``encoder.json``, ``rn.pt``/``rn.json``, ``log.jsonl`` (one JSON object per
epoch and phase), ``encoder_state.pt`` (resume state), ``summary.json``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cages.encoder import ConfigError
from cages.features import CageExtractor, resolve_device
from cages.io import write_json
from offline.datasets.base import WindowSet
from offline.training.config import TrainConfig
from offline.training.distributed import is_main_process
from offline.training.encoder import train_encoder
from offline.training.rn import fit_rn


@dataclass
class RunData:
    encoder_train: WindowSet  # windows the encoders see (no labels used)
    rn_train: WindowSet  # labelled windows of the RN (= gallery)
    probes: dict  # name -> WindowSet


def load_run_data(dataset: str, data_root: str | os.PathLike, f: int, view: int | None = None,
                  encoder_runs: str = "all") -> RunData:
    """Training/probe windows of ``dataset``. UCALGARY: RN on Run1, probes Run2 (same) and Run3-6 (cross),
    encoder on all runs (``encoder_runs='all'``, no labels) or Run1 only (``'run1'``)."""
    if dataset == "UCALGARY":
        from offline.datasets.ucalgary import load_ucalgary, ucalgary_windows

        data = load_ucalgary(data_root)
        run1 = ucalgary_windows(data, f, 1)
        enc = run1 if encoder_runs == "run1" else ucalgary_windows(data, f, [1, 2, 3, 4, 5, 6])
        probes = {"same": ucalgary_windows(data, f, 2), "cross": ucalgary_windows(data, f, [3, 4, 5, 6])}
        return RunData(enc, run1, probes)
    from offline.datasets.cage_layout import read_cage_dataset

    splits = read_cage_dataset(data_root, dataset, f, view)
    train = splits.pop("train")
    return RunData(train, train, splits)



def run_training(cfg: TrainConfig, data_root: str | os.PathLike, out: str | os.PathLike, train_flag: int = 1,
                 resume: bool = False, progress: bool = True, encoder_runs: str = "all",
                 command: str | None = None, print_fn=print, init: str | os.PathLike | None = None) -> dict:
    """The whole ``cagereid train`` job. train_flag 1: encoders + CAGEs + RN; 0: load encoders, RN only.
    ``init``: a model folder whose encoder weights the training starts from (fine-tuning).

    Returns the summary (also written to ``out/summary.json``): per probe split the window-level Rank-1 of the
    selected RN epoch and of the last epoch.
    """
    rcfg = cfg.resolved()
    out = Path(out)
    data = load_run_data(rcfg.dataset, data_root, rcfg.f, rcfg.view, encoder_runs)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(rcfg.device)
    print_fn(f"{rcfg.dataset} f={rcfg.f} mode={rcfg.mode} model={rcfg.model} attention={rcfg.attention} "
             f"t={rcfg.t} device={device}: encoder {data.encoder_train.n} windows, RN {data.rn_train.n}, "
             + ", ".join(f"{k} {v.n}" for k, v in data.probes.items()))
    if train_flag == 1:
        train_encoder(data.encoder_train, rcfg, out, rcfg.seed, device, progress, resume, command, init=init)
        if not is_main_process():
            return {}  # torchrun: the other processes helped with the encoders; rank 0 does the rest
    elif not (out / "encoder.pt").is_file():
        raise ConfigError(f"{out}/encoder.pt: no trained encoder to load (train_flag 0 needs one; run with --train_flag 1)")
    extractor = CageExtractor.from_checkpoint(out, device=device)
    res = fit_rn(extractor, data.rn_train, rcfg, out, probes=data.probes, progress=progress, device=device,
                 command=command)
    summary = {"dataset": rcfg.dataset, "f": rcfg.f, "mode": rcfg.mode, "model": rcfg.model,
               "attention": rcfg.attention, "encoder_runs": encoder_runs if rcfg.dataset == "UCALGARY" else None,
               "rn_selection": res["selection"], "selected_epoch": res["selected_epoch"], "metrics": res["metrics"],
               "feature_seconds": res["feature_seconds"], "device": device, "out": str(out)}
    write_json(out / "summary.json", summary)
    return summary

