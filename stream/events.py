"""The event log: one JSON object per line for programs that follow what the live pipeline decides.

`cagereid live --events FILE.jsonl` and `cagereid serve --events FILE.jsonl` write it (one schema; fields are only
ever added, so a reader ignores fields it does not know). Every record has these fields (``schema`` 1):

=============  =============================================================================================
``schema``     1
``type``       ``decision`` (every decision: one per window of a track), ``identity`` (a track's identity
               changed; also written for its first decision), ``handover`` (serve: an identity named on one
               camera is now named on another)
``time``       when the decision was made, Unix seconds (float)
``camera``     camera name, ``null`` with one camera (`live`); for a handover the camera it arrived on
``track``      track id (per camera: a track is ``(camera, track)``)
``identity``   a gallery name, an anonymous visitor id (``visitor-12``), ``unknown``, or ``...`` (pending)
``anonymous``  ``true`` when ``identity`` is an anonymous visitor (open world), else ``false``
``previous``   ``identity`` records only: the identity before (``null`` for a new track)
``confidence`` share of the track's recent votes for ``identity`` (0..1)
``score``      match score of the newest window against its best person (higher = more alike; compare
               with ``accept_score``)
``best``       best gallery person for the newest window before voting (``""`` with an empty gallery)
``windows``    windows of this track so far
``t_frame``    when the newest frame of that window was published, Unix seconds
``label``      ground truth carried by the source (synthetic walkers), ``""`` if unknown
=============  =============================================================================================

A ``handover`` record has ``schema``, ``type``, ``time``, ``camera``, ``track``, ``identity``, ``anonymous`` and
``from_camera``, ``from_track`` (where the identity was named before) and ``after_s`` (seconds between its last
decision there and its first one here): "visitor-12: cam1 -> cam3 after 14 s".

Retention (``retention_s``, serve): lines older than that are deleted from the file (at start-up and every
``PRUNE_EVERY_S``; the file is rewritten to a temp file and renamed over, so a reader never sees half a file).

Each line is written whole and flushed at once, so a reader tailing the file sees complete records; a crash
can at most leave a torn last line (skip a last line that does not parse).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from stream.errors import StreamError

SCHEMA = 1
PRUNE_EVERY_S = 600.0


def decision_record(msg, camera: str | None = None, type_: str = "decision", previous: str | None = None) -> dict:
    """The event-log record of one `stream.messages.DecisionMsg`."""
    camera = getattr(msg, "camera", "") or camera
    rec = {"schema": SCHEMA, "type": type_, "time": float(msg.t_decided), "camera": camera, "track": int(msg.track),
           "identity": msg.identity, "anonymous": bool(getattr(msg, "anonymous", False))}
    if type_ == "identity":
        rec["previous"] = previous
    rec.update({"confidence": round(float(msg.confidence), 4), "score": round(float(msg.score), 6), "best": msg.best,
                "windows": int(msg.windows), "t_frame": float(msg.t_pub), "label": msg.label})
    return rec


def handover_record(h: dict) -> dict:
    """The event-log record of one handover (`stream.visitors.Handovers`)."""
    return {"schema": SCHEMA, "type": "handover", "time": float(h["time"]), "camera": h["camera"],
            "track": int(h["track"]), "identity": h["identity"], "anonymous": bool(h["anonymous"]),
            "from_camera": h["from_camera"], "from_track": int(h["from_track"]), "after_s": float(h["after_s"])}


def prune(path: Path, older_than: float) -> int:
    """Delete the lines of an event log whose ``time`` is before ``older_than`` (a torn or foreign line goes too);
    atomic (temp file + rename). Returns how many lines went."""
    if not path.exists():
        return 0
    keep, dropped = [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                t = float(json.loads(line)["time"])
            except (ValueError, KeyError, TypeError):
                dropped += 1
                continue
            if t < older_than:
                dropped += 1
            else:
                keep.append(line if line.endswith("\n") else line + "\n")
    if dropped:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(keep)
        os.replace(tmp, path)
    return dropped


class EventLog:
    """Call it with every DecisionMsg (a `stream.pipeline.Pipeline` decision listener); ``close()`` at the end.

    ``retention_s`` (serve): the file is appended to (a restarted serve keeps its history) and lines older than
    that are deleted at start-up and every `PRUNE_EVERY_S`. Without it the file is written anew (live)."""

    def __init__(self, path: str | Path, camera: str | None = None, retention_s: float | None = None) -> None:
        self.path, self.camera, self.retention_s = Path(path), camera, retention_s
        self.pruned = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if retention_s:
                self.pruned += prune(self.path, time.time() - retention_s)
            self._f = open(self.path, "a" if retention_s else "w", encoding="utf-8")  # noqa: SIM115 - kept open
        except OSError as exc:
            raise StreamError(f"{path}: cannot write the event log ({exc.strerror or exc})") from None
        self._last_prune = time.time()
        self._identity: dict[tuple[str, int], str] = {}
        self.records = 0

    def _write(self, rec: dict) -> None:
        self._f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._f.flush()
        self.records += 1

    def __call__(self, msg) -> None:
        key = (getattr(msg, "camera", ""), msg.track)
        before = self._identity.get(key)
        if before != msg.identity:
            self._identity[key] = msg.identity
            self._write(decision_record(msg, self.camera, "identity", before))
        self._write(decision_record(msg, self.camera))
        if self.retention_s and time.time() - self._last_prune > PRUNE_EVERY_S:
            self.prune_now()

    def handover(self, h: dict) -> None:
        self._write(handover_record(h))

    def prune_now(self) -> int:
        """Apply the retention now (serve calls it every `PRUNE_EVERY_S`)."""
        self._last_prune = time.time()
        if not self.retention_s:
            return 0
        self._f.close()
        try:
            n = prune(self.path, time.time() - self.retention_s)
        finally:
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self.pruned += n
        return n

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
