"""The base of every user-facing error of `offline` (bad arguments, files, datasets, run folders).

The marker ``user_error = True`` is what ``cagereid`` looks for to print an error as one ``error: ...`` line
with exit status 2 instead of a traceback.
"""
from __future__ import annotations


class OfflineError(ValueError):
    """Bad input to an offline job; the message names the offending flag, file or folder."""

    user_error = True
