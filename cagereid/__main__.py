"""``python -m cagereid``: the same as the ``cagereid`` command."""
import sys

from cagereid.cli import main

sys.exit(main())
