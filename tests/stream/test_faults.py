"""Faults of the live pipeline as real processes (few, short tests; each starts the stages): spoofed stats and
decisions, the restart budget, a busy port, orphan-free stopping of the supervisor, and a short soak run."""
import os
import socket
import sys
import time
from pathlib import Path

import pytest
import zmq

from stream.dashboard import drive, exit_status
from stream.cmd_soak import stop_check
from stream.config import StreamConfig
from stream.errors import StreamError
from stream.messages import DecisionMsg, StatsMsg
from stream.pipeline import Pipeline

FAKE = "stream_fakes:make_encoder"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
pytestmark = pytest.mark.slow


def test_spoofed_stats_and_decisions_are_refused_and_restarts_still_work():
    cfg = StreamConfig(heartbeat_s=0.2)
    with Pipeline(cfg, "synthetic:people=2", model=FAKE, extra_peers=("mallory",)) as pipe:
        pipe.start(timeout_s=60)
        assert pipe.run_until(lambda: pipe.state.decisions >= 5, 30)
        # the stages' keys are on no command line and in no environment (what `ps e` shows)
        secrets = [kp.secret for kp in [*pipe.keys.server.values(), *pipe.keys.clients.values()]]
        for sp in pipe.procs.values():
            seen = Path(f"/proc/{sp.proc.pid}/cmdline").read_bytes() + Path(f"/proc/{sp.proc.pid}/environ").read_bytes()
            assert not any(secret in seen for secret in secrets)
        # an authenticated peer that is not the producer / identify speaks for them
        pub = pipe.peer_socket(zmq.PUB, "events", "mallory")
        pipe.run_until(lambda: False, 0.5)
        now = time.time()
        pid = pipe.procs["producer"].proc.pid
        for _ in range(50):
            pub.send_multipart(StatsMsg(stage="producer", pid=pid, state="finished", t=now).to_frames())
            pub.send_multipart(DecisionMsg(track=1, identity="mallory", confidence=1.0, windows=9, score=9.0,
                                           best="mallory", t_pub=now - 1e-6, t_decided=now).to_frames())
        assert pipe.run_until(lambda: pipe.state.spoofed_events >= 100, 10)
        pub.close(0)
        # without any key: the handshake fails, nothing arrives
        ctx = zmq.Context()
        plain = ctx.socket(zmq.PUB)
        plain.linger = 0
        plain.connect(pipe.addr["events"])
        pipe.run_until(lambda: False, 0.5)
        for _ in range(50):
            plain.send_multipart(StatsMsg(stage="producer", pid=pid, state="finished", t=now).to_frames())
        n = pipe.state.spoofed_events + pipe.state.malformed_events
        pipe.run_until(lambda: False, 1.0)
        plain.close(0)
        ctx.term()
        assert pipe.state.spoofed_events + pipe.state.malformed_events == n
        assert not pipe.producer_finished
        assert all(r.identity != "mallory" and r.best != "mallory" for r in pipe.state.tracks.values())
        # so a killed producer is still restarted and decisions resume
        pipe.kill("producer")
        t_kill = time.time()
        assert pipe.run_until(lambda: pipe.state.newest_t_pub > t_kill, 20), "no decisions after the restart"
        assert pipe.procs["producer"].restarts == 1


def test_restart_budget_ends_the_run_with_the_reason(tmp_path):
    junk = tmp_path / "walk.mp4"
    junk.write_text("not a video")  # the producer fails on it every time (live refuses it before start-up)
    cfg = StreamConfig(heartbeat_s=0.2, restart_backoff_s=0.05, restart_budget=2, restart_window_s=60)
    with Pipeline(cfg, str(junk), model=FAKE) as pipe:
        pipe.start(timeout_s=60)
        reason = drive(pipe, duration=60, dashboard=False)
    assert reason.startswith("failed: producer died 3 times within 60s"), reason
    assert "walk.mp4" in reason or "producer" in reason
    assert exit_status(reason) == 1 and pipe.procs["producer"].restarts == 2
    assert not any(sp.proc.is_alive() for sp in pipe.procs.values())


def test_a_busy_port_is_a_one_line_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(StreamError, match=f"events bus .*{port}"):
            Pipeline(StreamConfig(events_port=port), "synthetic").start()
        pipe = Pipeline(StreamConfig(frames_port=port), "synthetic", model=FAKE)
        with pytest.raises(StreamError, match=f"windower.*cannot bind.*{port}"):
            pipe.start(timeout_s=60)
        assert not any(sp.proc.is_alive() for sp in pipe.procs.values())


@pytest.mark.parametrize("way", ["sigterm", "sigkill", "sigint"])
def test_stopping_the_supervisor_leaves_nothing_running(tmp_path, way, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))  # the child `cagereid live` finds the fake encoder
    r = stop_check(way, None, model=FAKE, people=1)
    assert r["processes"] >= 3 and r["left_running"] == 0, r
    if way == "sigterm":  # a clean stop: summary, exit 0
        assert r["rc"] == 0 and r["summary"], r
    elif way == "sigint":
        assert r["rc"] == 130 and r["summary"], r


def test_short_soak(tmp_path, monkeypatch, capsys):
    from cagereid.cli import main

    monkeypatch.syspath_prepend(str(HERE))
    code = main(["soak", "--model", FAKE, "--malformed", "400", "--kills", "1", "--kill-every", "2",
                 "--stops", "none", "--people", "2", "--json", str(tmp_path / "soak.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    import json

    res = json.loads((tmp_path / "soak.json").read_text())
    m = res["malformed"]
    assert m["sent"] == 400 and m["all_counted"] and not m["stage_deaths"]
    assert res["intruders"]["nothing_through"] and not res["oversize"]["reached_decoder"]
    assert all(res["kills"][s]["kills"] == 1 for s in ("producer", "windower", "identify"))
