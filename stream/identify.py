"""Encoder + matcher stage: batches windows across tracks, computes CAGEs, matches them, decides per track.

Binds a PULL socket for windows (the windower connects). Each loop drains what is waiting into a bounded
backlog (oldest dropped first when it overflows), drops windows older than ``max_window_age_s`` (so latency
stays bounded when the machine cannot keep up), encodes up to ``batch_max`` windows in one call on the best
device, matches them against the gallery and publishes one `DecisionMsg` per window on the events bus.
The gallery file is re-read when another process commits to it (enrolment while live).

Models: a checkpoint folder/file written by ``cagereid train`` (loaded with `cages.features.CageExtractor`),
or ``package.module:factory`` naming a function that returns an object with ``embed(windows (B, f, J, 3))
-> (B, D)``, ``fingerprint``, ``f`` and ``layout`` (custom encoders, tests).
"""
from __future__ import annotations

import importlib
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from cages.matcher import RunningMean
from stream.config import StreamConfig
from stream.decision import TrackDecider
from stream.errors import StreamError
from stream.messages import DecisionMsg, MessageError, Window, WindowMsg, decode

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "cages" / "pretrained"  # = cages.pretrained.PATH


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

    impl = CageExtractor.from_checkpoint(path, device=device)
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
    `cages.matcher.calibrate_threshold` compares new-walk genuine scores with best-other-person scores.
    With one person there is nothing to compare: accept anything within the spread of their own walks.
    """
    from cages.matcher import Matcher, calibrate_threshold, running_mean

    if not data.names:
        return None
    pooled = np.empty(data.embeddings.shape, dtype=np.float64)
    for s in np.unique(data.session):
        sel = data.session == s
        pooled[sel] = running_mean(data.embeddings[sel], cfg.pool_windows)
    t = calibrate_threshold(pooled, data.person, data.session, cfg.metric, cfg.reduce)
    if t is None:
        own = Matcher(data.embeddings, data.person, cfg.metric, cfg.reduce).scores(pooled).max(1)
        t = float(np.percentile(own, 5))
    return t


class Identifier:
    """The pure part of the stage: windows in, decisions out (model, gallery and deciders, no sockets)."""

    def __init__(self, encoder: Encoder, cfg: StreamConfig, gallery_path: str | Path | None) -> None:
        self.encoder, self.cfg = encoder, cfg
        self.gallery_path = Path(gallery_path) if gallery_path else None
        self.deciders: dict[int, TrackDecider] = {}
        self.recent: dict[int, RunningMean] = {}  # track -> mean of its last `pool_windows` embeddings
        self.last_seen: dict[int, float] = {}
        self._gallery = None
        self._version = None
        self.names: list[str] = []
        self.matcher = None
        self.accept_score: float | None = cfg.accept_score
        self.reload(force=True)

    def reload(self, force: bool = False) -> bool:
        """Re-read the gallery if it changed; return True when it did."""
        from cages.matcher import Matcher
        from stream.gallery import Gallery

        if self.gallery_path is None:
            return False
        if self._gallery is None:
            if not self.gallery_path.exists():
                return False
            self._gallery = Gallery(self.gallery_path, create=False)
        version = self._gallery.version()
        if not force and version == self._version:
            return False
        self._version = version
        data = self._gallery.load(self.encoder.fingerprint)
        self.names = data.names
        self.matcher = Matcher(data.embeddings, data.person, self.cfg.metric, self.cfg.reduce) if data.names else None
        self.accept_score = self.cfg.accept_score
        if self.accept_score is None:
            self.accept_score = calibrate(data, self.cfg)
        return True

    def process(self, batch: list[Window]) -> list[DecisionMsg]:
        windows = np.stack([m.window for m in batch])  # (B, f, J, 3)
        emb = self.encoder.embed(windows)  # (B, D)
        pooled = np.empty_like(emb, dtype=np.float64)
        for i, m in enumerate(batch):  # the track's running mean over its last `pool_windows` windows
            pool = self.recent.get(m.track)
            if pool is None:
                pool = self.recent[m.track] = RunningMean(self.cfg.pool_windows, emb.shape[1])
            pooled[i] = pool.push(emb[i])
        emb = pooled
        if self.matcher is not None:
            res = self.matcher.match(emb)
            best = [self.names[i] for i in res.best]
            score = res.best_score
        else:
            best, score = [None] * len(batch), np.full(len(batch), np.nan)
        out = []
        now = time.time()
        for m, b, s in zip(batch, best, score):
            d = self.deciders.get(m.track)
            if d is None:
                d = self.deciders[m.track] = TrackDecider.from_config(self.cfg)
            self.last_seen[m.track] = now
            dec = d.update(b, float(s), self.accept_score)
            out.append(DecisionMsg(track=m.track, identity=dec.identity, confidence=dec.confidence,
                                   windows=dec.windows, score=float(s) if np.isfinite(s) else 0.0, best=b or "",
                                   t_pub=m.t_pub, t_decided=time.time(), label=m.label))
        return out

    def expire(self, now: float, keep_s: float = 60.0) -> None:
        for t in [t for t, seen in self.last_seen.items() if now - seen > keep_s]:
            self.deciders.pop(t, None)
            self.recent.pop(t, None)
            self.last_seen.pop(t, None)


def run(cfg: StreamConfig, model: str | None, gallery: str | None, windows_bind: str, events_addr: str,
        control_addr: str | None) -> int:
    """Stage main loop (own process). Reports ``f``, ``layout``, ``fingerprint`` and its bound address."""
    import zmq

    from stream.runtime import StageRuntime

    rt = StageRuntime("identify", cfg, events_addr, control_addr)
    try:
        encoder = load_encoder(model, cfg.device)
        ident = Identifier(encoder, cfg, gallery)
        from pose.layouts import get_layout

        J = get_layout(encoder.layout).J
        for b in (1, cfg.batch_max):  # warm up (first calls allocate) so the first real windows are not late
            encoder.embed(np.zeros((b, encoder.f, J, 3), np.float32))
    except Exception as exc:  # noqa: BLE001 - reported to the supervisor, which shows it and stops
        rt.state = "error"
        rt.info["error"] = f"{type(exc).__name__}: {exc}"
        for _ in range(4):
            rt.tick(force=True)
            time.sleep(cfg.heartbeat_s / 2)
        rt.close()
        return 1
    pull = rt.ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, cfg.windows_hwm)
    pull.setsockopt(zmq.LINGER, 0)
    host, port = windows_bind.rsplit(":", 1)
    port = str(pull.bind_to_random_port(host)) if port == "0" else (pull.bind(windows_bind) or port)
    rt.info.update(address=f"{host}:{port}", f=str(encoder.f), layout=encoder.layout,
                   fingerprint=encoder.fingerprint, device=encoder.device, model=encoder.source)
    backlog: deque[Window] = deque()
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    last_reload = time.time()
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
                    msg = decode(frames, expect=(WindowMsg,))
                    if msg.windows.shape[1:3] != (encoder.f, J):
                        raise MessageError(f"windows are {msg.windows.shape[1:3]}, the model takes {(encoder.f, J)}")
                except MessageError:
                    rt.counters["malformed"] += 1
                    continue
                items = msg.items()
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
            if now - last_reload > 1.0:
                last_reload = now
                try:
                    ident.reload()
                    rt.info.pop("error", None)
                except Exception as exc:  # noqa: BLE001 - keep running on the old gallery, show the problem
                    rt.info["error"] = str(exc)
                ident.expire(now)
            rt.gauges["gallery"] = float(len(ident.names))
            if ident.accept_score is not None:
                rt.gauges["accept_score"] = float(ident.accept_score)
            rt.check_control()
            rt.tick()
    finally:
        pull.close()
        rt.close()
    return 0
