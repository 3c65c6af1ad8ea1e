"""Encoder + matcher stage: batches windows across tracks, computes CAGEs, matches them, decides per track.

Binds a PULL socket for windows (the windower connects). Each loop drains what is waiting into a bounded
backlog (oldest dropped first when it overflows), drops windows older than ``max_window_age_s`` (so latency
stays bounded when the machine cannot keep up), encodes up to ``batch_max`` windows in one call on the best
device, matches them against the gallery and publishes one `DecisionMsg` per window on the events bus.
The gallery file is re-read when another process commits to it (enrolment while live), by a background thread
(`GalleryWatcher`): a locked or slow gallery never holds up the real-time loop, which only swaps in the new
matcher when one is ready.

Several workers (`cagereid serve --workers N`): each is one such stage ("identify", "identify-1", ...) with its own
windows address; the windower sends a track's windows always to the same one, so each track's pooling and votes
live in one process. Tracks are keyed by ``(camera, track)``. With CUDA, worker k runs on GPU ``k mod count``.

Open world (``visitors``, serve): a track still ``unknown`` after ``visitor_windows`` windows is enrolled in the
shared gallery as an anonymous visitor (`stream.visitors.VisitorDesk`, off the real-time loop: ``visitor-N`` from
the gallery, its recent window embeddings, ``anonymous=True``); the track is named so at once, and every worker and
serve process matches the visitor once its gallery watcher has reloaded, so the walker is recognised on another
camera. Decisions say whether their identity is anonymous.

Models: a checkpoint folder/file written by ``cagereid train`` (loaded with `cages.features.CageExtractor`),
or ``package.module:factory`` naming a function that returns an object with ``embed(windows (B, f, J, 3))
-> (B, D)``, ``fingerprint``, ``f`` and ``layout`` (custom encoders, tests).
"""
from __future__ import annotations

import importlib
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from cages.matcher import RunningMean
from stream.config import StreamConfig
from stream.decision import UNKNOWN, TrackDecider
from stream.errors import StreamError
from stream.messages import DecisionMsg, MessageError, Window, WindowMsg, decode

TrackKey = tuple[str, int]  # (camera, track): track ids are unique per camera only
# the live-domain encoder (= cages.pretrained.LIVE_PATH) and the small synthetic demo encoder (= cages.pretrained.PATH)
DEMO_MODEL = Path(__file__).resolve().parents[1] / "cages" / "pretrained"
DEFAULT_MODEL = DEMO_MODEL / "live"


class Encoder:
    """A loaded model: ``embed((B, f, J, 3) raw windows) -> (B, D) float32``, plus its identity."""

    def __init__(self, impl: Any, f: int, layout: str, fingerprint: str, device: str, source: str) -> None:
        self.impl, self.f, self.layout, self.fingerprint = impl, int(f), layout, fingerprint
        self.device, self.source = device, source

    def embed(self, windows: np.ndarray) -> np.ndarray:
        out = self.impl.embed(np.asarray(windows, dtype=np.float32))
        if hasattr(out, "detach"):
            out = out.detach().cpu().numpy()
        return np.asarray(out, dtype=np.float32)


def _checkpoint_meta(path: Path) -> dict:
    import json

    for cand in ([path / "encoder.json"] if path.is_dir() else [path.with_suffix(".json"), path.parent / "encoder.json"]):
        if cand.exists():
            try:
                return json.loads(cand.read_text())
            except json.JSONDecodeError:
                raise StreamError(f"{cand}: model metadata is not valid JSON") from None
    return {}


def load_encoder(spec: str | Path | None = None, device: str = "auto") -> Encoder:
    """Load a model from a checkpoint path (default: the shipped one) or a ``module:function`` factory."""
    import torch

    torch.set_num_threads(1)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    spec = str(spec or DEFAULT_MODEL)
    if ":" in spec and not Path(spec).exists() and not spec[1:3] == ":\\":
        modname, func = spec.split(":", 1)
        try:
            impl = getattr(importlib.import_module(modname), func)()
        except (ImportError, AttributeError) as exc:
            raise StreamError(f"model factory {spec!r}: {exc}") from None
        return Encoder(impl, impl.f, impl.layout, impl.fingerprint, device, spec)
    path = Path(spec)
    if not path.exists():
        raise StreamError(f"{path}: no such model (a folder written by `cagereid train --out`)")
    if path.is_dir() and not (path / "encoder.pt").exists():
        raise StreamError(f"{path}: no encoder.pt in this folder (train one with `cagereid train --out {path}`)")
    from cages.features import CageExtractor

    try:
        impl = CageExtractor.from_checkpoint(path, device=device)
    except Exception as exc:  # noqa: BLE001 - a truncated, garbage or foreign file: one line naming it
        raise StreamError(f"{path}: cannot load this model ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    try:
        impl.trace()  # same numbers, ~1.4x faster on CPU at live batch sizes
    except Exception as exc:  # noqa: BLE001 - a model, device or torch TorchScript cannot trace works untraced
        print(f"warning: {path}: running the encoder untraced ({exc})", file=sys.stderr)
    meta = _checkpoint_meta(path)
    f = getattr(getattr(impl, "cfg", None), "f", None) or meta.get("f") or meta.get("length")
    layout = meta.get("layout") or "kinect_v1"
    if not f:
        raise StreamError(f"{path}: model metadata does not say its window length f")
    return Encoder(impl, int(f), str(layout), str(impl.fingerprint), device, str(path))


def calibrate(data, cfg: StreamConfig) -> float | None:
    """Open-set acceptance score from the gallery alone, for pooled queries as the stage makes them.

    Each enrolment session (one walk) is pooled like a live track (running mean of ``pool_windows``), then
    `cages.matcher.calibrate_threshold` compares new-walk genuine scores with best-other-person scores. A person
    enrolled from one walk only has no other walk: its two halves stand in for two walks
    (`cages.matcher.split_single_groups`), never a window against itself.
    With one person there is nothing to compare: accept anything within the spread of their own walks.
    """
    from cages.matcher import Matcher, calibrate_threshold, running_mean, split_single_groups

    if not data.names:
        return None
    walks = split_single_groups(data.person, data.session)  # a one-walk enrolment: its halves as two walks
    pooled = np.empty(data.embeddings.shape, dtype=np.float64)
    for s in np.unique(walks):
        sel = walks == s
        pooled[sel] = running_mean(data.embeddings[sel], cfg.pool_windows)
    t = calibrate_threshold(pooled, data.person, walks, cfg.metric, cfg.reduce)
    if t is None:
        own = Matcher(data.embeddings, data.person, cfg.metric, cfg.reduce).scores(pooled).max(1)
        t = float(np.percentile(own, 5))
    return t


class Matching:
    """What a gallery gives the matcher: names, a `cages.matcher.Matcher` (None for an empty gallery) and the
    acceptance score (configured, or calibrated on the gallery)."""

    def __init__(self, data, cfg: StreamConfig) -> None:
        from cages.matcher import Matcher

        self.names = data.names
        self.matcher = Matcher(data.embeddings, data.person, cfg.metric, cfg.reduce) if data.names else None
        self.accept_score = cfg.accept_score if cfg.accept_score is not None else calibrate(data, cfg)
        anon = getattr(data, "anonymous", None)  # per person (galleries with visitors)
        self.anonymous = {n for n, a in zip(data.names, anon) if a} if anon is not None else set()


class GalleryWatcher:
    """Keeps a `Matching` of the gallery (a file or a ``postgresql://`` URL) up to date from a background thread.

    `load_now()` reads it once (start-up; errors raise). `start()` then polls the gallery's change counter
    (`version()`, one small read) every ``poll_s`` in a thread (SQLite waits for locks and psycopg for the
    network without the GIL) and rebuilds the matching when anybody committed; the real-time loop calls `take()`,
    which never blocks: it returns the newest matching (or None) and the last error (a locked, damaged or
    unreachable gallery: the loop keeps matching on the old one, and the watcher reconnects by itself).
    A PostgreSQL gallery of `stream.gallery.search.DB_SEARCH_MIN_PEOPLE` people or more is matched in the
    database (`SearchMatching`: centroids cached in memory for when the database is unreachable)."""

    def __init__(self, spec, fingerprint: str, cfg: StreamConfig, poll_s: float = 1.0,
                 db_search_min_people: int | None = None) -> None:
        from stream.gallery import is_url
        from stream.gallery.search import DB_SEARCH_MIN_PEOPLE

        # from this many people on, a PostgreSQL gallery is searched in the database (`stream.gallery.search`)
        self.db_search_min_people = DB_SEARCH_MIN_PEOPLE if db_search_min_people is None else db_search_min_people
        self.spec = str(spec) if is_url(spec) else Path(spec)
        self.path = self.spec  # the name older callers used
        self.fingerprint, self.cfg, self.poll_s = fingerprint, cfg, poll_s
        self._gallery = None
        self._version = None
        self._ready: Matching | None = None
        self.error: str | None = None
        self.reloads = 0
        self.stale: list[str] = []  # people with only another model's embeddings (not matched; re-enrol them)
        self._current = None  # the newest matching built
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _check(self, force: bool = False) -> Matching | None:
        from stream.gallery import gallery_exists, open_gallery

        if self._gallery is None:
            if not gallery_exists(self.spec):
                return None
            self._gallery = open_gallery(self.spec, create=False, readonly=True, check_same_thread=False)
        version = self._gallery.version()
        if not force and version == self._version:
            return None
        from stream.gallery.search import CACHE_REFRESH_S, SearchMatching, use_db_search

        if (not force and isinstance(self._current, SearchMatching)
                and time.monotonic() - self._current.built < CACHE_REFRESH_S):
            self._version = version  # the database search sees the change already; the cache is refreshed later
            return None

        if use_db_search(self._gallery, self.cfg, self.db_search_min_people):  # a large shared gallery
            m = SearchMatching(self._gallery, self.spec, self.fingerprint, self.cfg, calibrate,
                               healthy=lambda: self.error is None)
        else:
            data = self._gallery.load(self.fingerprint)
            m = Matching(data, self.cfg)
            self.stale = list(data.stale)
        self._version = version
        self._current = m
        return m

    def load_now(self) -> Matching | None:
        return self._check(force=True)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                m = self._check()
                self.error = None
            except Exception as exc:  # noqa: BLE001 - shown on the dashboard; matching goes on with the old one
                self.error = str(exc)
                continue
            if m is not None:
                self._ready = m
                self.reloads += 1
        if self._gallery is not None:
            self._gallery.close()

    def start(self) -> "GalleryWatcher":
        self._thread = threading.Thread(target=self._run, name="gallery-watcher", daemon=True)
        self._thread.start()
        return self

    def take(self) -> Matching | None:
        m, self._ready = self._ready, None
        return m

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)  # a thread stuck on a lock is a daemon: it ends with the process


class Identifier:
    """The pure part of the stage: windows in, decisions out (model, gallery and deciders, no sockets)."""

    def __init__(self, encoder: Encoder, cfg: StreamConfig, gallery_path: str | Path | None,
                 visitors: bool = False) -> None:
        self.encoder, self.cfg = encoder, cfg
        self.deciders: dict[TrackKey, TrackDecider] = {}
        self.recent: dict[TrackKey, RunningMean] = {}  # track -> mean of its last `pool_windows` embeddings
        self.last_seen: dict[TrackKey, float] = {}
        self.names: list[str] = []
        self.known: set[str] = set()
        self.anonymous: set[str] = set()  # gallery names that are anonymous visitors
        self.matcher = None
        self.accept_score: float | None = cfg.accept_score
        self.raw: dict[TrackKey, deque] = {}  # visitors: the track's recent window embeddings (what a visitor enrols)
        self.visitor: dict[TrackKey, str] = {}  # tracks named as a new visitor (before the gallery has reloaded)
        self.visitor_names: set[str] = set()
        self.desk = None
        if visitors and gallery_path and cfg.visitor_windows > 0:
            from stream.visitors import VisitorDesk

            self.desk = VisitorDesk(gallery_path, encoder.fingerprint)
        self.watcher = GalleryWatcher(gallery_path, encoder.fingerprint, cfg) if gallery_path else None
        if self.watcher is not None:
            self.use(self.watcher.load_now())

    def use(self, m: Matching | None) -> bool:
        """Switch to a new gallery matching (between batches); return True when there was one."""
        if m is None:
            return False
        self.names, self.matcher, self.accept_score = m.names, m.matcher, m.accept_score
        self.known = set(m.names)
        self.anonymous = set(getattr(m, "anonymous", set()))
        return True

    def process(self, batch: list[Window]) -> list[DecisionMsg]:
        windows = np.stack([m.window for m in batch])  # (B, f, J, 3)
        emb = self.encoder.embed(windows)  # (B, D)
        pooled = np.empty_like(emb, dtype=np.float64)
        for i, m in enumerate(batch):  # the track's running mean over its last `pool_windows` windows
            key = (m.camera, m.track)
            pool = self.recent.get(key)
            if pool is None:
                pool = self.recent[key] = RunningMean(self.cfg.pool_windows, emb.shape[1])
            pooled[i] = pool.push(emb[i])
            if self.desk is not None:
                self.raw.setdefault(key, deque(maxlen=self.cfg.pool_windows)).append(emb[i])
        if self.matcher is not None:
            res = self.matcher.match(pooled)
            best = [self.names[i] for i in res.best]
            score = res.best_score
        else:
            best, score = [None] * len(batch), np.full(len(batch), np.nan)
        if self.desk is not None:
            self._take_visitors()
        out = []
        now = time.time()
        for m, b, s in zip(batch, best, score):
            key = (m.camera, m.track)
            d = self.deciders.get(key)
            if d is None:
                d = self.deciders[key] = TrackDecider.from_config(self.cfg)
            self.last_seen[key] = now
            vote, vote_score = b, float(s)
            v = self.visitor.get(key)
            if v and v not in self.known:  # named a visitor ("" = asked for one), the gallery has not reloaded yet
                vote, vote_score = v, float("inf")
            dec = d.update(vote, vote_score, self.accept_score)
            if self.desk is not None and dec.identity == UNKNOWN and v is None \
                    and d.windows >= self.cfg.visitor_windows and key in self.raw:
                self.desk.request(key, np.stack(self.raw[key]), f"{m.camera or 'camera'} track {m.track}")
                self.visitor[key] = ""  # asked: one visitor per track
            out.append(DecisionMsg(track=m.track, identity=dec.identity, confidence=dec.confidence,
                                   windows=dec.windows, score=float(s) if np.isfinite(s) else 0.0, best=b or "",
                                   t_pub=m.t_pub, t_decided=time.time(), label=m.label, camera=m.camera,
                                   anonymous=dec.identity in self.anonymous or dec.identity in self.visitor_names))
        return out

    def _take_visitors(self) -> None:
        """Name the tracks whose visitor enrolment finished: their next votes go to the visitor at once."""
        for key, name in self.desk.done():
            if key not in self.deciders or not name:
                continue
            self.visitor[key] = name
            self.visitor_names.add(name)
            d = self.deciders[key]
            d.votes.clear()  # the track's unknown votes were about this very person
            d.identity = name

    def expire(self, now: float, keep_s: float = 60.0) -> None:
        for t in [t for t, seen in self.last_seen.items() if now - seen > keep_s]:
            self.deciders.pop(t, None)
            self.recent.pop(t, None)
            self.last_seen.pop(t, None)
            self.raw.pop(t, None)
            self.visitor.pop(t, None)

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.desk is not None:
            self.desk.stop()


def receive_windows(frames: list[bytes], f: int, J: int) -> list[Window]:
    """One message off the wire as windows the model takes (``f`` frames of ``J`` joints); `MessageError` else."""
    msg = decode(frames, expect=(WindowMsg,))
    if msg.windows.shape[1:3] != (f, J):
        raise MessageError(f"windows are {msg.windows.shape[1:3]}, the model takes {(f, J)}")
    return msg.items()


def worker_device(device: str, worker: int) -> str:
    """``auto`` with CUDA: worker k on GPU ``k mod count`` (one worker per GPU); else the device as given."""
    if device != "auto":
        return device
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"cuda:{worker % n}" if n else "cpu"


def run(cfg: StreamConfig, model: str | None, gallery: str | None, windows_bind: str, events_addr: str,
        control_addr: str | None, keys=None, worker: int = 0, visitors: bool = False) -> int:
    """Stage main loop (own process). Reports ``f``, ``layout``, ``fingerprint`` and its bound address.
    ``worker``: which identify worker this is (its stage name, its GPU); ``visitors``: the open world."""
    import zmq

    from stream.messages import max_part_bytes, worker_name
    from stream.runtime import StageRuntime

    rt = StageRuntime(worker_name(worker), cfg, events_addr, control_addr, keys)
    try:
        encoder = load_encoder(model, worker_device(cfg.device, worker))
        ident = Identifier(encoder, cfg, gallery, visitors=visitors)
        from pose.layouts import get_layout

        J = get_layout(encoder.layout).J
        for b in (1, cfg.batch_max):  # warm up (first calls allocate) so the first real windows are not late
            encoder.embed(np.zeros((b, encoder.f, J, 3), np.float32))
        pull = rt.socket(zmq.PULL, "windows", bind=windows_bind, max_part=max_part_bytes(cfg.max_tracks, encoder.f, J))
    except Exception as exc:  # noqa: BLE001 - reported to the supervisor, which shows it and stops
        return rt.fail(exc)
    pull.setsockopt(zmq.RCVHWM, cfg.windows_hwm)
    rt.info.update(address=rt.bound_address(pull), f=str(encoder.f), layout=encoder.layout,
                   fingerprint=encoder.fingerprint, device=encoder.device, model=encoder.source)
    backlog: deque[Window] = deque()
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    last_expire = time.time()
    if ident.watcher is not None:
        ident.watcher.start()
    rt.settle()
    rt.state = "running"
    rt.tick(force=True)
    try:
        while not rt.stopping:
            events = dict(poller.poll(cfg.poll_ms if not backlog else 0))
            n = 0
            while pull in events and n < cfg.windows_hwm:  # what is waiting, but never an endless drain
                n += 1
                try:
                    frames = pull.recv_multipart(flags=zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    items = receive_windows(frames, encoder.f, J)
                except MessageError:
                    rt.counters["malformed"] += 1
                    continue
                rt.counters["received"] += len(items)
                backlog.extend(items)
                while len(backlog) > cfg.windows_hwm:
                    backlog.popleft()
                    rt.counters["dropped"] += 1
            now = time.time()
            while backlog and now - backlog[0].t_pub > cfg.max_window_age_s:
                backlog.popleft()
                rt.counters["stale"] += 1
            rt.gauges["queue"] = float(len(backlog))
            if backlog:
                batch = [backlog.popleft() for _ in range(min(cfg.batch_max, len(backlog)))]
                t0 = time.perf_counter()
                for dec in ident.process(batch):
                    rt.send_event(dec)
                rt.counters["windows"] += len(batch)
                rt.counters["batches"] += 1
                rt.gauges["batch_ms"] = (time.perf_counter() - t0) * 1e3
                rt.gauges["batch"] = float(len(batch))
            if ident.watcher is not None:  # never blocks: the watcher thread did the reading
                ident.use(ident.watcher.take())
                if ident.watcher.error:
                    rt.info["error"] = ident.watcher.error
                else:
                    rt.info.pop("error", None)
            if now - last_expire > 1.0:
                last_expire = now
                ident.expire(now)
            rt.gauges["gallery"] = float(len(ident.names))
            if ident.desk is not None:
                rt.gauges["visitors"] = float(ident.desk.enrolled)
                if ident.desk.error:
                    rt.info["visitor_error"] = ident.desk.error[:500]
            if ident.accept_score is not None:
                rt.gauges["accept_score"] = float(ident.accept_score)
            rt.check_control()
            rt.tick()
    finally:
        ident.close()
        pull.close()
        rt.close()
    return 0
