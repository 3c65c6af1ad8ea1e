"""Status lines with the time left for jobs made of a few long steps (on stderr by default; the caller's
``say`` decides). Imports nothing of ours, so every package can use it."""
from __future__ import annotations

import sys


def stderr_say(quiet: bool = False):
    """A ``say(msg)`` printing one status line on stderr (nothing when ``quiet``)."""
    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    return say


class Steps:
    """The long steps of a job (a CAGE training, a benchmark run): ``start()`` before each, ``done(what)`` after;
    it says how many are left and about how long they take at the mean pace of the timed steps so far (a step
    that cost nothing, e.g. a reused run, passes ``timed=False`` and does not count)."""

    def __init__(self, total: int, say) -> None:
        import time

        self.total, self.say, self.n, self.timed, self.spent = total, say, 0, 0, 0.0
        self._clock, self._t = time.monotonic, time.monotonic()

    def start(self) -> None:
        self._t = self._clock()

    def done(self, what: str, timed: bool = True) -> None:
        self.n += 1
        if timed:
            self.timed += 1
            self.spent += self._clock() - self._t
        left = self.total - self.n
        eta = ""
        if left and self.timed:
            sec = left * self.spent / self.timed
            eta = f", about {sec / 60:.0f} min left" if sec >= 90 else f", about {sec:.0f} s left"
        self.say(f"[{self.n}/{self.total}] {what}{eta}")
