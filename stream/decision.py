"""Per-track identity decisions: a vote over recent windows, open set, and hysteresis.

Each window of a track casts one vote: the best gallery person if its match score reaches the acceptance
score, else ``UNKNOWN``. The track's label is the vote leader, but

* no label before ``min_windows`` votes (``PENDING``), and a first label needs ``adopt_share`` of the votes;
* an existing label changes only when the challenger holds ``switch_share`` of the votes *and* leads the
  current label by ``switch_margin`` (hysteresis: one odd window never flips a label).

``confidence`` is the share of the recent votes that support the current label.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

UNKNOWN = "unknown"
PENDING = "..."


@dataclass
class Decision:
    identity: str
    confidence: float
    windows: int  # windows of the track seen so far
    changed: bool  # the label differs from the previous decision


class TrackDecider:
    def __init__(self, vote_window: int = 15, min_windows: int = 5, adopt_share: float = 0.5,
                 switch_share: float = 0.6, switch_margin: float = 0.2) -> None:
        self.votes: deque[str] = deque(maxlen=vote_window)
        self.min_windows, self.adopt_share = min_windows, adopt_share
        self.switch_share, self.switch_margin = switch_share, switch_margin
        self.identity = PENDING
        self.windows = 0

    @classmethod
    def from_config(cls, cfg) -> "TrackDecider":
        return cls(cfg.vote_window, cfg.min_windows, cfg.adopt_share, cfg.switch_share, cfg.switch_margin)

    def update(self, best: str | None, score: float, accept_score: float | None) -> Decision:
        """Add one window's match (``best`` person name or None for an empty gallery) and decide."""
        accepted = best is not None and accept_score is not None and score >= accept_score
        self.votes.append(best if accepted else UNKNOWN)
        self.windows += 1
        n = len(self.votes)
        counts = Counter(self.votes)
        leader, lead_n = max(counts.items(), key=lambda kv: (kv[1], kv[0] == self.identity))
        share = {k: v / n for k, v in counts.items()}
        before = self.identity
        if self.identity == PENDING:
            if self.windows >= self.min_windows and share[leader] >= self.adopt_share:
                self.identity = leader
        elif leader != self.identity:
            if share[leader] >= self.switch_share and share[leader] - share.get(self.identity, 0.0) >= self.switch_margin:
                self.identity = leader
        conf = share.get(self.identity, 0.0) if self.identity != PENDING else share[leader]
        return Decision(self.identity, float(conf), self.windows, self.identity != before)
