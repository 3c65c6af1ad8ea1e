"""The one validator of every configuration (model, features, training, live pipeline): configs are
dataclasses, and `config_from_dict` builds one from a plain mapping (a YAML file, a checkpoint's JSON), refusing
unknown keys and values of the wrong type with one line that names the key and the expected type.

Range and choice checks stay with each config (``__post_init__`` / ``check``); this module checks what every
config needs: known keys, and types as the dataclass annotations declare them (``int``, ``float``, ``str``,
``bool``, ``X | None``, ``list[...]``). Integers are accepted where a float is expected; a bool is never taken
for a number, a float never for an int (``pool_windows: 2.5`` is refused, not truncated).

Only the standard library is imported here.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """An impossible or malformed configuration; the message names the file (when known) and the key."""

    user_error = True  # the CLI prints it as one `error: ...` line


def _type_name(tp) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if tp is float:
        return "a number"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp) -> tuple[bool, Any]:
    """``(ok, value)``: whether ``value`` is of type ``tp``, and the value to store (ints become floats)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, v = _coerce(value, arg)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        args = typing.get_args(tp)
        if not args:
            return True, list(value)
        item = args[0]
        out = []
        for v in value:
            ok, c = _coerce(v, item)
            if not ok:
                return False, value
            out.append(c)
        return True, out if origin is list else tuple(out)
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    if isinstance(tp, type):
        return isinstance(value, tp), value
    return True, value


def check_types(cls, data: dict, what: str, origin: str | None = None) -> dict:
    """``data`` with every value checked against ``cls``'s field types (and ints turned into floats where a float
    is expected). Unknown keys and wrong types raise `ConfigError` naming ``origin`` (a file), the key and the
    expected type."""
    where = f"{origin}: " if origin else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}expected a mapping of {what} settings, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(map(str, data)) - set(names))
    if unknown:
        raise ConfigError(f"{where}unknown {what} setting(s) {', '.join(unknown)} (known: {', '.join(names)})")
    out = {}
    for k, v in data.items():
        ok, c = _coerce(v, hints[k])
        if not ok:
            raise ConfigError(f"{where}{what} setting {k!r} must be {_type_name(hints[k])}, got {v!r}")
        out[k] = c
    return out


def config_from_dict(cls, data: dict, what: str, origin: str | None = None):
    """Build the config dataclass ``cls`` from a plain mapping (validated by `check_types`). Errors raised by the
    config's own checks (``__post_init__``) come out as `ConfigError` naming ``origin``."""
    values = check_types(cls, data, what, origin)
    try:
        return cls(**values)
    except ConfigError as exc:
        if origin and not str(exc).startswith(str(origin)):
            raise ConfigError(f"{origin}: {exc}") from None
        raise


def load_yaml(path: str | Path, what: str) -> dict:
    """A YAML config file as a mapping (``{}`` for an empty file); unreadable or non-mapping files are a
    one-line `ConfigError` naming the file."""
    import yaml  # pyyaml: a dependency of cagereid, not of every user of this module

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of {what} settings")
    return data
