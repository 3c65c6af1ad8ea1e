"""What encoder and RN training share: seeding, the run's git commit, the append-only ``log.jsonl`` and its
reader, progress bars."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class JsonlLog:
    """Append-only JSONL log: one object per line, each line written whole and flushed to disk before the call
    returns (an interrupted run leaves at most a torn last line, which `read_jsonl` skips)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __call__(self, **rec) -> None:
        rec = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **rec}
        line = (json.dumps(rec, default=float) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records of a `JsonlLog` file; a torn (unparseable) last line from an interrupted run is skipped,
    a bad line elsewhere is an error (the file is not such a log)."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}:{i + 1}: not a JSON line") from None
        if isinstance(rec, dict):
            out.append(rec)
    return out


def progress_bar(enabled: bool):
    """A rich progress bar with the time left, on stderr (results go to stdout)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(), disable=not enabled, transient=False,
                    console=Console(stderr=True))

