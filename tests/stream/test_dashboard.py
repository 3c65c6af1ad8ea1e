"""The dashboard renders tracks, stage health and latency into a plain console (as inside tmux)."""
import io

from rich.console import Console

from stream.dashboard import DashboardState, StageRow, render
from stream.messages import DecisionMsg, StatsMsg


def _state(now=1000.0):
    s = DashboardState(title="cagereid live", source="synthetic", started=now - 12)
    for track, ident, label in [(0, "ana", "ana"), (1, "unknown", "fay"), (2, "...", "ben")]:
        s.on_decision(DecisionMsg(track=track, identity=ident, confidence=0.8, windows=17, score=0.91, best="ana",
                                  t_pub=now - 0.012, t_decided=now - 0.004, label=label), now=now - 0.5)
    s.on_stats(StatsMsg("identify", 11, "running", now, {"windows_per_s": 80.0, "queue": 2.0, "gallery": 5.0,
                                                         "stale": 3.0, "malformed": 1.0},
                        {"device": "cpu", "fingerprint": "abc123"}), now=now)
    s.on_stats(StatsMsg("windower", 12, "running", now, {"frames_per_s": 240.0, "frames_lost": 4.0}), now=now)
    s.stages["producer"] = StageRow("producer", state="running", alive=False, restarts=1, last_beat=now - 5)
    return s


def _text(state, now=1000.0, width=120, height=40):
    buf = io.StringIO()
    console = Console(file=buf, width=width, height=height, force_terminal=True, color_system=None)
    console.print(render(state, now=now))
    return buf.getvalue()


def test_one_row_per_track_with_identity_and_truth():
    out = _text(_state())
    lines = out.splitlines()
    row = lambda track: next(ln for ln in lines if ln.strip().startswith("│") and f" {track} " in ln[:12])  # noqa: E731
    assert "ana" in row(0) and "80%" in row(0) and "17" in row(0)
    assert "unknown" in row(1) and "fay" in row(1)
    assert "pending" in row(2)
    assert "gallery 5 people" in out and "abc123" in out


def test_health_shows_dead_stage_rates_drops_and_latency():
    out = _text(_state())
    assert "DEAD" in out  # the producer died and is being restarted
    ident = next(ln for ln in out.splitlines() if "identify" in ln and "running" in ln)
    assert "80 windows" in ident and " 3 " in ident  # rate and dropped (stale) windows
    assert "p50 8.0 ms" in out  # t_decided - t_pub
    assert "restarts" in out


def test_empty_state_renders_and_narrow_terminal_does_not_crash():
    s = DashboardState()
    assert "waiting for windows" in _text(s, width=100)
    assert _text(_state(), width=60, height=20)
