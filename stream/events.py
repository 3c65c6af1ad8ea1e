"""The event log: one JSON object per line for programs that follow what the live pipeline decides.

`cagereid live --events FILE.jsonl` writes it; the multi-camera handover log reuses the same schema. Every
record has these fields (``schema`` 1):

=============  =============================================================================================
``schema``     1
``type``       ``decision`` (every decision: one per window of a track), ``identity`` (a track's identity
               changed; also written for its first decision), later ``handover`` (multi-camera)
``time``       when the decision was made, Unix seconds (float)
``camera``     camera name, ``null`` with one camera
``track``      track id (per camera)
``identity``   a gallery name, ``unknown``, or ``...`` (pending: too few windows yet)
``previous``   ``identity`` records only: the identity before (``null`` for a new track)
``confidence`` share of the track's recent votes for ``identity`` (0..1)
``score``      match score of the newest window against its best person (higher = more alike; compare
               with ``accept_score``)
``best``       best gallery person for the newest window before voting (``""`` with an empty gallery)
``windows``    windows of this track so far
``t_frame``    when the newest frame of that window was published, Unix seconds
``label``      ground truth carried by the source (synthetic walkers), ``""`` if unknown
=============  =============================================================================================

Each line is written whole and flushed at once, so a reader tailing the file sees complete records; a crash
can at most leave a torn last line (skip a last line that does not parse).
"""
from __future__ import annotations

import json
from pathlib import Path

from stream.errors import StreamError

SCHEMA = 1


def decision_record(msg, camera: str | None = None, type_: str = "decision", previous: str | None = None) -> dict:
    """The event-log record of one `stream.messages.DecisionMsg`."""
    rec = {"schema": SCHEMA, "type": type_, "time": float(msg.t_decided), "camera": camera, "track": int(msg.track),
           "identity": msg.identity}
    if type_ == "identity":
        rec["previous"] = previous
    rec.update({"confidence": round(float(msg.confidence), 4), "score": round(float(msg.score), 6), "best": msg.best,
                "windows": int(msg.windows), "t_frame": float(msg.t_pub), "label": msg.label})
    return rec


class EventLog:
    """Call it with every DecisionMsg (a `stream.pipeline.Pipeline` decision listener); ``close()`` at the end."""

    def __init__(self, path: str | Path, camera: str | None = None) -> None:
        self.path, self.camera = Path(path), camera
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "w", encoding="utf-8")
        except OSError as exc:
            raise StreamError(f"{path}: cannot write the event log ({exc.strerror or exc})") from None
        self._identity: dict[int, str] = {}
        self.records = 0

    def _write(self, rec: dict) -> None:
        self._f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._f.flush()
        self.records += 1

    def __call__(self, msg) -> None:
        before = self._identity.get(msg.track)
        if before != msg.identity:
            self._identity[msg.track] = msg.identity
            self._write(decision_record(msg, self.camera, "identity", before))
        self._write(decision_record(msg, self.camera))

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
