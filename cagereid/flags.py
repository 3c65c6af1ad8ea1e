"""Flags every command spells the same way, and old flag names kept as aliases.

* `add_quiet`: ``--quiet`` (no progress bars, results only); ``--no-progress`` is its old name.
* `alias`: an old flag name that still works; it prints a one-line deprecation warning on stderr unless it is
  one of the original TensorFlow code's flags (``--model``, ``--RN_dir``, ``--train_flag``), which stay as
  documented aliases for people following the paper's commands.

Imports nothing of ours, so every ``cmd_*`` module can use it.
"""
from __future__ import annotations

import argparse
import sys


class _Alias(argparse.Action):
    def __init__(self, option_strings, dest, new: str = "", warn: bool = True, convert=None, **kw):
        self.new, self.warn, self.convert = new, warn, convert
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        if self.warn:
            print(f"warning: {option_string} is deprecated and will be removed; use {self.new}", file=sys.stderr)
        if self.nargs == 0:
            values = self.const
        if self.convert:
            try:
                values = self.convert(values)
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise argparse.ArgumentError(self, str(exc)) from None
        setattr(namespace, self.dest, values)


def alias(parser, old: str, new: str, dest: str, *, flag: bool = False, const=True, warn: bool = True,
          type=None, convert=None, metavar=None, show: str | None = None) -> None:
    """Accept ``old`` as another name of the option ``new`` (stored in ``dest``).

    ``flag``: ``old`` takes no value and stores ``const``. ``convert`` maps the old value to the new one.
    ``show``: help text (documented alias); otherwise the alias is hidden from ``--help``.
    """
    kw = dict(nargs=0, const=const) if flag else dict(type=type, metavar=metavar)
    parser.add_argument(old, dest=dest, action=_Alias, new=new, warn=warn, convert=convert,
                        default=argparse.SUPPRESS, help=show if show else argparse.SUPPRESS, **kw)


def add_quiet(parser, what: str = "no progress bars or status lines (results and errors only)") -> None:
    """``--quiet`` (and the old ``--no-progress``)."""
    parser.add_argument("--quiet", "-q", action="store_true", help=what)
    alias(parser, "--no-progress", "--quiet", "quiet", flag=True)
