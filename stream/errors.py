"""User-facing errors of the live pipeline (printed by ``cagereid`` as one ``error: ...`` line, exit 2)."""
from __future__ import annotations


class StreamError(ValueError):
    """Bad input from the user (a flag, a file, a source); the message names the offending thing."""

    user_error = True  # the marker cagereid's CLI looks for: one `error: ...` line, exit status 2


class ConfigError(StreamError):
    """A stream config file or value is invalid; the message names the file and the key."""


class SourceError(StreamError):
    """A pose source (camera, video, recording, synthetic spec) cannot be opened or read."""


class GalleryError(StreamError):
    """The gallery file is unreadable, or holds embeddings of a different model."""
