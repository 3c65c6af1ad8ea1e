"""Open world across cameras: anonymous visitor ids, their expiry, and handovers between cameras.

* `VisitorDesk` (in each identify worker): enrols a walker nobody knows as an anonymous visitor in the shared
  gallery, from a background thread so the real-time loop never waits for the database: ``visitor-N`` comes from
  the gallery (`Gallery.next_visitor_name`, unique across processes), the track's recent window embeddings go in
  one enrolment transaction with ``anonymous=True``. Every worker and every serve process sharing the gallery sees
  the visitor once its gallery watcher reloads, so the walker is named on the next camera too.
* `purge_visitors` (serve, every minute): visitors enrolled longer ago than ``visitor_expire_s`` (or the
  ``retention_s`` setting, whichever is shorter) are deleted (`Gallery.purge_anonymous`).
* `Handovers` (serve's supervisor): an identity named on one camera and then on another gives one handover record
  ("visitor-12: cam1 -> cam3 after 14 s", the gap between the last decision on cam1 and the first on cam3), shown on
  the dashboard and written to the event log (`stream.events`).
"""
from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from stream.decision import PENDING, UNKNOWN

REVISIT_S = 10.0  # an identity back on a camera it was named on within this many seconds is no handover
MAX_IDENTITIES = 100000  # identities remembered for handovers (the oldest go first)


def _open(spec, create: bool = True):
    """The shared gallery for writing (SQLite file or PostgreSQL URL)."""
    from stream.gallery import is_url, open_gallery

    return open_gallery(str(spec), create=create, **({} if is_url(spec) else {"check_same_thread": False}))


class VisitorDesk:
    """Enrols anonymous visitors off the real-time loop. ``request(key, embeddings, source)`` never blocks;
    ``done()`` returns the ``(key, name)`` pairs finished since the last call (name ``""``: it failed, see
    ``error``)."""

    def __init__(self, gallery, fingerprint: str) -> None:
        self.spec, self.fingerprint = gallery, fingerprint
        self._in: queue.Queue = queue.Queue(maxsize=64)
        self._out: deque = deque()
        self.enrolled = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._gallery = None
        self._thread = threading.Thread(target=self._run, name="visitor-desk", daemon=True)
        self._thread.start()

    def request(self, key, embeddings: np.ndarray, source: str) -> bool:
        try:
            self._in.put_nowait((key, np.asarray(embeddings, np.float32), source))
            return True
        except queue.Full:
            self.error = "visitor enrolments are queued up (the gallery is slow); this one is skipped"
            self._out.append((key, ""))
            return False

    def done(self) -> list[tuple]:
        out = []
        while self._out:
            out.append(self._out.popleft())
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                key, emb, source = self._in.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                if self._gallery is None:
                    self._gallery = _open(self.spec)
                name = self._gallery.next_visitor_name()
                self._gallery.enroll(name, emb, self.fingerprint, source=source, anonymous=True)
                self.enrolled += 1
                self.error = None
                self._out.append((key, name))
            except Exception as exc:  # noqa: BLE001 - shown on the dashboard; the track stays unknown
                self.error = f"visitor enrolment failed: {exc}"
                self._out.append((key, ""))
                if self._gallery is not None:
                    try:
                        self._gallery.close()
                    except Exception:  # noqa: BLE001, S110 - a broken connection: dropped anyway
                        pass
                    self._gallery = None  # reopen next time (a database that was away)
        if self._gallery is not None:
            self._gallery.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


def purge_visitors(gallery, older_than_s: float) -> int:
    """Delete the anonymous visitors enrolled more than ``older_than_s`` ago; return how many went."""
    g = _open(gallery)
    try:
        return int(g.purge_anonymous(older_than_s) or 0)
    finally:
        g.close()


@dataclass
class Sighting:
    camera: str
    track: int
    first: float
    last: float


class Handovers:
    """Feed it every decision (`__call__`); it returns a handover record dict (`stream.events` schema) when a named
    identity shows up on another camera than the one it was last named on, else None. ``recent`` keeps the last
    few for the dashboard."""

    def __init__(self, keep: int = 5) -> None:
        self.seen: dict[str, dict[str, Sighting]] = {}  # identity -> camera -> sighting
        self.last_camera: dict[str, str] = {}
        self.recent: deque = deque(maxlen=keep)
        self.count = 0

    def __call__(self, msg) -> dict | None:
        if msg.identity in (PENDING, UNKNOWN) or not msg.camera:
            return None
        now = float(msg.t_decided)
        cams = self.seen.setdefault(msg.identity, {})
        here = cams.get(msg.camera)
        prev_cam = self.last_camera.get(msg.identity)
        out = None
        if prev_cam is not None and prev_cam != msg.camera and (here is None or now - here.last > REVISIT_S):
            before = cams[prev_cam]
            out = {"identity": msg.identity, "anonymous": bool(msg.anonymous), "from_camera": prev_cam,
                   "from_track": before.track, "camera": msg.camera, "track": int(msg.track), "time": now,
                   "after_s": round(max(0.0, now - before.last), 2)}
            self.recent.append(out)
            self.count += 1
        if here is None or now - here.last > REVISIT_S:
            cams[msg.camera] = Sighting(msg.camera, int(msg.track), now, now)
        else:
            here.last, here.track = now, int(msg.track)
        self.last_camera.pop(msg.identity, None)  # newest last: the oldest identities are forgotten first
        self.last_camera[msg.identity] = msg.camera
        while len(self.last_camera) > MAX_IDENTITIES:
            old = next(iter(self.last_camera))
            self.last_camera.pop(old)
            self.seen.pop(old, None)
        return out


def handover_text(rec: dict) -> str:
    return f"{rec['identity']}: {rec['from_camera']} -> {rec['camera']} after {rec['after_s']:.0f} s"


def now() -> float:
    return time.time()
