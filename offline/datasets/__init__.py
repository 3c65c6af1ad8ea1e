"""Dataset readers and writers; every reader returns `WindowSet`s (see `base.py`)."""
from offline.datasets.base import DatasetError, WindowSet

__all__ = ["DatasetError", "WindowSet"]
