"""Make the test-only fake encoder (stream_fakes.py) importable, also in the stage processes the tests spawn
(the fork server gets sys.path from the process that starts it). The suite runs with --import-mode=importlib, which
does not put test folders on sys.path."""
import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
