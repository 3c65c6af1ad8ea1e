"""The legacy ``ids_*.npy`` files of the CAGE pre-processed layout: a pickled ``{person_id: [window indices]}``.

The original release saves a Python dict with ``np.save`` (a 0-d object array, CAGE_SPEC §1.2), so
it can only be read by unpickling. This module is the project's single place that deals with pickles:

* `load_ids_dict` unpickles with an allow-list (plain containers, ints and the few NumPy constructors
  that a pickled array or scalar needs), so a hostile ``ids_*.npy`` cannot run code: anything else in
  the pickle stream is refused with a `DatasetError` that names the file.
* `save_ids_dict` writes the same format the original code reads (``np.load(..., allow_pickle=True)
  .item()``), atomically.

Every other ``.npy``/``.npz`` in the project is read with ``allow_pickle=False``.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from cages.io import atomic_path
from offline.datasets.base import DatasetError

# (module, name) pairs a pickled 0-d object array holding a dict of ints / int lists / int arrays needs.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("builtins", "int"),
    ("__builtin__", "dict"),  # Python 2 pickles
    ("__builtin__", "list"),
    ("__builtin__", "int"),
    ("__builtin__", "long"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("__builtin__", "object"),
}


class _IdsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle hook
        if (module, name) in _ALLOWED_GLOBALS:
            if (module, name) == ("__builtin__", "long"):
                return int
            if module == "__builtin__":
                module = "builtins"
            if module == "copy_reg":
                module = "copyreg"
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from an ids file")


def load_ids_dict(path: str | os.PathLike) -> dict[int, list[int]]:
    """Read a legacy ``ids_*.npy``: ``{person_id: [window indices]}`` with plain ``int`` keys and values.

    Raises `DatasetError` naming the file when it is missing, not an ``.npy``, not a pickled dict, or
    holds anything but integer ids and integer index lists.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: missing file")
    try:
        with open(path, "rb") as fp:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
            if not dtype.hasobject:
                raise DatasetError(f"{path}: expected a pickled dict (object .npy), got a {dtype} array of shape {shape}")
            # Equivalent of np.load(path, allow_pickle=True) for object arrays, with an allow-listed unpickler.
            obj = _IdsUnpickler(fp, encoding="latin1").load()
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a bad file
        raise DatasetError(f"{path}: cannot read ids dict ({_one_line(exc)})") from None
    if isinstance(obj, np.ndarray):
        if obj.shape != () or obj.dtype != object:
            raise DatasetError(f"{path}: expected a 0-d object array holding a dict, got shape {obj.shape}")
        obj = obj.item()
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a dict {{person_id: [window indices]}}, got {type(obj).__name__}")
    out: dict[int, list[int]] = {}
    for key, value in obj.items():
        try:
            pid = _as_int(key)
            indices = [_as_int(v) for v in np.asarray(value).reshape(-1).tolist()]
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: person id {key!r} has non-integer ids or indices") from None
        if pid in out:
            raise DatasetError(f"{path}: person id {pid} appears twice")
        out[pid] = indices
    return out


def save_ids_dict(path: str | os.PathLike, ids: dict[int, list[int]]) -> None:
    """Write ``ids`` as the original code expects it (``np.save`` of a dict, a 0-d object array), atomically.

    Keys become Python ints, values lists of Python ints (the original code indexes arrays with them).
    """
    plain = {int(k): [int(i) for i in np.asarray(v).reshape(-1).tolist()] for k, v in ids.items()}
    arr = np.empty((), dtype=object)
    arr[()] = plain
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, arr, allow_pickle=True)


def _as_int(value) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("bool is not an id")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    raise TypeError(f"not an integer: {value!r}")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
