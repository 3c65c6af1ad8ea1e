"""`StreamConfig`: every knob of the live pipeline, with its default and why. Loaded from YAML.

All network addresses and ports live here and nowhere else. Port 0 means "pick a free port at start-up";
the stage that binds reports the port it got and keeps it across restarts, so a restarted peer reconnects.
"""
from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from stream.errors import ConfigError

from cagereid import configs as _configs

DEFAULT_CONFIG = _configs.path("stream")


@dataclass(frozen=True)
class StreamConfig:
    # --- network (services bind to loopback only unless you change host) ---------------------------
    host: str = "127.0.0.1"
    frames_port: int = 0  # windower binds (PULL); producers connect (PUSH): a restarted producer reconnects
    windows_port: int = 0  # identify binds (PULL); the windower connects (PUSH)
    events_port: int = 0  # supervisor binds (SUB); every stage connects (PUB): heartbeats, stats, decisions
    control_port: int = 0  # supervisor binds (PUB); every stage connects (SUB): "stop"
    # --- bounded queues: a flood drops messages (counted) instead of growing memory and latency --------
    frames_hwm: int = 120  # source frames (all their tracks) queued between producer and windower (~4 s at 30 fps)
    windows_hwm: int = 256  # windows waiting in identify (and window messages queued towards it)
    events_hwm: int = 10000  # events (decisions, stats) queued towards the dashboard
    max_window_age_s: float = 0.5  # identify drops windows older than this (bounds latency under overload)
    # --- windows ---------------------------------------------------------------------------------------
    f: int = 0  # window length in frames; 0 = take it from the model's metadata
    stride: int = 3  # emit one window every `stride` new frames of a track
    track_timeout_s: float = 3.0  # forget a track's partial window after this long without frames
    # --- encoder + matcher ------------------------------------------------------------------------------
    device: str = "auto"  # auto = CUDA when available, else CPU
    batch_max: int = 64  # windows encoded together (across tracks) at most
    metric: str = "euclidean"  # euclidean (what CageExtractor.embed is made for) | cosine
    reduce: str = "centroid"  # centroid (mean enrolled embedding per person) | nearest (best single embedding)
    pool_windows: int = 60  # match the mean embedding of the track's last N windows (~6 s at stride 3: several gait cycles)
    accept_score: float | None = None  # below this a window votes "unknown"; None = calibrate on the gallery
    # --- decisions (per track) -------------------------------------------------------------------------
    vote_window: int = 15  # decide from the votes of the last N windows of the track
    min_windows: int = 5  # no label before this many windows ("..." = pending)
    adopt_share: float = 0.5  # a first label needs this share of the votes
    switch_share: float = 0.6  # changing an existing label needs this share (hysteresis) ...
    switch_margin: float = 0.2  # ... and this lead over the current label's share
    # --- open world across cameras (serve) ---------------------------------------------------------------
    visitor_windows: int = 30  # a track still unknown after this many windows gets an anonymous visitor id (0 = never)
    visitor_expire_s: float = 3600.0  # visitor ids are deleted from the gallery this long after they were given
    retention_s: float = 604800.0  # visitor ids and event-log lines older than this are deleted (7 days)
    # --- supervision -------------------------------------------------------------------------------------
    heartbeat_s: float = 0.5  # every stage publishes stats this often
    stage_timeout_s: float = 3.0  # a stage silent this long is shown as stalled
    restart_backoff_s: float = 1.0  # a stage dying within 10 s of its start waits 1, 2, 4 ... x this (else restarts at once)
    restart_budget: int = 5  # a stage that dies more often than this within restart_window_s ends the run (exit 1)
    restart_window_s: float = 60.0
    orphan_timeout_s: float = 5.0  # a stage that has not heard the supervisor this long stops (no orphans)
    poll_ms: int = 50  # socket poll timeout inside stage loops
    max_tracks: int = 64  # tracks per source frame at most (more are dropped, counted); bounds message sizes
    # --- sources -------------------------------------------------------------------------------------------
    fps: float = 30.0  # playback rate of synthetic walkers and recorded skeletons
    layout: str = "kinect_v1"  # joint layout of frames on the wire; the live pipeline uses the model's layout

    def address(self, port: int) -> str:
        return f"tcp://{self.host}:{port}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **kw: Any) -> "StreamConfig":
        bad = [k for k in kw if k not in {f.name for f in fields(self)}]
        if bad:
            raise ConfigError(f"unknown stream setting(s): {', '.join(bad)}")
        return replace(self, **{k: v for k, v in kw.items()})

    def check(self, origin: str = "config") -> "StreamConfig":
        """Every value's type (the one config validator, `cages.config`) and range; `ConfigError` naming
        ``origin`` and each offending key."""
        from cages.config import ConfigError as BadConfig
        from cages.config import check_types

        try:  # ranges below compare numbers: wrong types first
            check_types(type(self), asdict(self), "stream", origin=origin)
        except BadConfig as exc:
            raise ConfigError(str(exc)) from None
        problems = [f"{f.name} must be finite" for f in fields(self)
                     if isinstance(getattr(self, f.name), float) and not math.isfinite(getattr(self, f.name))]
        if problems:
            raise ConfigError(f"{origin}: " + "; ".join(problems))
        if not _valid_host(self.host):
            problems.append(f"host must be an IP address, * or a host name, not {self.host[:60]!r}")
        ports = {name: getattr(self, name) for name in ("frames_port", "windows_port", "events_port", "control_port")}
        for name, port in ports.items():
            if not 0 <= port <= 65535:
                problems.append(f"{name} must be 0..65535 (0 = pick a free port)")
        fixed = [p for p in ports.values() if p]
        if len(fixed) != len(set(fixed)):
            problems.append("the non-zero ports must differ")
        positive = ("max_window_age_s", "track_timeout_s", "heartbeat_s", "stage_timeout_s", "restart_window_s",
                    "fps", "visitor_expire_s", "retention_s")
        problems += [f"{name} must be > 0" for name in positive if not getattr(self, name) > 0]
        if self.visitor_windows < 0:
            problems.append("visitor_windows must be >= 0 (0 = no visitor ids)")
        if self.restart_backoff_s < 0:
            problems.append("restart_backoff_s must be >= 0")
        if not 1 <= self.poll_ms <= 1000:
            problems.append("poll_ms must be 1..1000")
        if self.orphan_timeout_s < 2 * self.heartbeat_s:
            problems.append("orphan_timeout_s must be at least 2 x heartbeat_s")
        if self.restart_budget < 1:
            problems.append("restart_budget must be >= 1")
        if not 1 <= self.max_tracks <= 1024:
            problems.append("max_tracks must be 1..1024")
        for name in ("adopt_share", "switch_share"):
            if not 0 < getattr(self, name) <= 1:
                problems.append(f"{name} must be in (0, 1]")
        if not 0 <= self.switch_margin <= 1:
            problems.append("switch_margin must be in [0, 1]")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            problems.append(f"device must be auto, cpu, cuda or cuda:N, not {self.device[:40]!r}")
        from pose.layouts import LAYOUTS

        if self.layout not in LAYOUTS:
            problems.append(f"layout must be one of {', '.join(LAYOUTS)}")
        if self.stride < 1:
            problems.append("stride must be >= 1")
        if self.f < 0:
            problems.append("f must be >= 0")
        if self.metric not in ("cosine", "euclidean"):
            problems.append(f"metric must be cosine or euclidean, not {self.metric!r}")
        if self.reduce not in ("centroid", "nearest"):
            problems.append(f"reduce must be centroid or nearest, not {self.reduce!r}")
        if not 1 <= self.min_windows <= self.vote_window:
            problems.append("need 1 <= min_windows <= vote_window")
        for name in ("frames_hwm", "windows_hwm", "events_hwm", "batch_max", "pool_windows", "vote_window"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if problems:
            raise ConfigError(f"{origin}: " + "; ".join(problems))
        return self


def _valid_host(host: str) -> bool:
    if host == "*":
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(re.fullmatch(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                                 r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*", host))


def load_config(path: str | Path | None = None, **overrides: Any) -> StreamConfig:
    """Read a YAML file (flat keys, or under a top-level ``stream:`` key) or a shipped config name; unknown keys
    and values of the wrong type are a one-line `ConfigError` naming the file and the key (the one config
    validator, `cages.config`), ranges are checked by `StreamConfig.check`."""
    from cages.config import ConfigError as BadConfig
    from cages.config import check_types, load_yaml

    try:
        p = _configs.resolve(path) if path else DEFAULT_CONFIG
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    try:
        data = load_yaml(p, "stream")
        if "stream" in data and isinstance(data["stream"], dict):
            data = data["stream"]
        values = {**data, **{k: v for k, v in overrides.items() if v is not None}}
        values = check_types(StreamConfig, values, "stream", origin=str(p))
    except BadConfig as exc:
        raise ConfigError(str(exc)) from None
    return StreamConfig(**values).check(str(p))
