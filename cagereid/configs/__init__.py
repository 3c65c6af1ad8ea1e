"""Shipped configuration files (YAML), installed with the package as ``cagereid.configs``.

Commands find them here, never in the working directory, so an installed cagereid has them too.
``--config`` flags take a file path or the name of a shipped config (``eval_ucalgary_quick`` or
``eval_ucalgary_quick.yaml``): `resolve` turns either into a path.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    """Names (without ``.yaml``) of every shipped config file."""
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def path(name: str) -> Path:
    """The shipped config file ``name`` (``"stream"`` or ``"stream.yaml"``)."""
    stem = name[:-5] if name.endswith(".yaml") else name
    p = HERE / f"{stem}.yaml"
    if not p.is_file():
        raise FileNotFoundError(f"no shipped config {name!r} (shipped: {', '.join(names())})")
    return p


def resolve(spec: str | Path) -> Path:
    """A ``--config`` value: an existing file, else the shipped config of that name (``configs/X.yaml`` too).

    Raises FileNotFoundError naming both places when neither exists.
    """
    p = Path(spec)
    if p.is_file():
        return p
    if p.parent in (Path("."), Path("configs")) and p.suffix in ("", ".yaml"):
        try:
            return path(p.name)
        except FileNotFoundError:
            pass
    raise FileNotFoundError(f"{spec}: no such config file, nor a shipped config of that name "
                            f"(shipped: {', '.join(names())})")
