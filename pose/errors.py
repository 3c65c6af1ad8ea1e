"""The base of every user-facing error of `pose` (bad input: a layout name, a source, a model, a file).

The marker ``user_error = True`` is what ``cagereid`` looks for to print an error as one ``error: ...`` line
with exit status 2 instead of a traceback; `pose` imports nothing of ours, so it carries the marker itself.
"""
from __future__ import annotations


class PoseError(ValueError):
    """Bad input to a pose job; the message names the offending thing."""

    user_error = True
