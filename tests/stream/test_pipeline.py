"""The live pipeline as real processes over ZeroMQ (few, short tests: each starts 3 processes): malformed
input, a producer killed and restarted, a flood beyond capacity.

Uses the test-only fake encoder (stream_fakes.py) so it does not depend on the shipped model; identities with
the real encoder are checked by test_demo.py.
"""
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from stream.enrol import enrol_synthetic
from stream.config import StreamConfig
from stream.decision import PENDING
from stream.identify import load_encoder
from stream.messages import FrameMsg, WindowMsg
from stream.pipeline import Pipeline

FAKE = "stream_fakes:make_encoder"
pytestmark = pytest.mark.slow


def _enrol(path: Path, known: int, people: int, model: str = FAKE) -> None:
    """Enrol walkers 0..known-1 from two walks each (one session per walk, as `cagereid enroll` twice)."""
    enc = load_encoder(model, "cpu")
    enrol_synthetic(path, enc, people, known, seed=0, stride=3, fps=30, walks=2, frames=150)


def _counter(pipe, stage, name):
    row = pipe.state.stages.get(stage)
    return row.counters.get(name, 0) if row else 0


def test_identities_malformed_input_and_producer_restart(tmp_path):
    gallery = tmp_path / "g.sqlite"
    _enrol(gallery, known=3, people=4)
    cfg = StreamConfig(heartbeat_s=0.2, restart_backoff_s=0.2)
    source = "synthetic:people=4,frames=120,walks=0,walk_seed=2000"  # endless: new walks every 4 s
    with Pipeline(cfg, source, model=FAKE, gallery=gallery, extra_peers=("tester",)) as pipe:
        pipe.start(timeout_s=60)
        assert pipe.run_until(lambda: pipe.state.decisions >= 8 * 4, 30), "no decisions"

        # malformed messages straight into both data sockets (as an authenticated peer, a buggy stage):
        # counted, dropped, nobody dies
        for bus in ("frames", "windows"):
            s = pipe.peer_socket(zmq.PUSH, bus, "tester")
            s.setsockopt(zmq.LINGER, 1000)
            for junk in ([b"frame", b"{not json"], [b"window", b'{"v": 1, "arrays": []}'], [b"\xff"],
                         [b"frame", b'{"v": 99}', b"123"],
                         # well formed, but 7 joints in a 20-joint stream / windows the model cannot take
                         FrameMsg(seq=0, frame=0, t_capture=0.0, t_pub=time.time(), tracks=[555],
                                  joints=np.zeros((1, 7, 3), np.float32)).to_frames(),
                         WindowMsg(frame=0, t_pub=time.time(), tracks=[555],
                                   windows=np.zeros((1, 3, 20, 3), np.float32)).to_frames()):
                s.send_multipart(junk)
            s.close()
        assert pipe.run_until(lambda: _counter(pipe, "windower", "malformed") >= 6
                              and _counter(pipe, "identify", "malformed") >= 6, 10)
        pids = {n: pipe.procs[n].proc.pid for n in ("windower", "identify")}

        # kill the producer hard: the supervisor restarts it, it reconnects, decisions flow again
        old = pipe.kill("producer")
        assert pipe.run_until(lambda: pipe.procs["producer"].proc.pid != old
                              and pipe.state.stages["producer"].state == "running", 15), "producer not restarted"
        assert pipe.state.stages["producer"].restarts == 1
        n = pipe.state.decisions
        # the restarted producer's walkers are new tracks (ids offset): let them collect ~20 windows each
        assert pipe.run_until(lambda: pipe.state.decisions >= n + 80, 30), "no decisions after the restart"
        assert min(r.track for r in pipe.state.tracks.values()) < 100000 <= max(r.track for r in pipe.state.tracks.values())
        assert {n: pipe.procs[n].proc.pid for n in ("windower", "identify")} == pids
        assert all(pipe.procs[n].proc.is_alive() for n in ("windower", "identify"))

    # every walker of the restarted producer got a decision (identity quality is test_demo's job: this
    # encoder is a stand-in)
    after = [r for r in pipe.state.tracks.values() if r.track >= 100000 and r.windows >= 10]
    assert len(after) >= 4 and all(r.identity != PENDING for r in after), [(r.track, r.identity) for r in after]


def test_flood_is_bounded_and_drops_are_counted(tmp_path):
    gallery = tmp_path / "g.sqlite"
    _enrol(gallery, known=2, people=16, model="stream_fakes:make_slow_encoder")
    cfg = StreamConfig(heartbeat_s=0.2, frames_hwm=200, windows_hwm=16, batch_max=4, max_window_age_s=0.3,
                       stride=1)
    source = "synthetic:people=16,frames=300,walks=1"
    with Pipeline(cfg, source, model="stream_fakes:make_slow_encoder", gallery=gallery, realtime=False) as pipe:
        pipe.start(timeout_s=60)
        pipe.run_until(lambda: pipe.producer_finished and time.time() - max(
            [r.last_update for r in pipe.state.tracks.values()] or [time.time()]) > 1.0, 40)
        assert all(pipe.procs[n].proc.is_alive() for n in ("windower", "identify"))
        produced = _counter(pipe, "producer", "frames") + _counter(pipe, "producer", "dropped")
        lost = (_counter(pipe, "producer", "dropped") + _counter(pipe, "windower", "windows_dropped")
                + _counter(pipe, "identify", "stale") + _counter(pipe, "identify", "dropped"))
    assert produced == 300  # source frames (16 tracks each)
    assert lost > 0  # more than the slow encoder can take: dropped, and counted
    p50, p95 = pipe.state.latency()
    assert p95 < 1000 * (cfg.max_window_age_s + 0.2)  # latency stays bounded by the age limit + one batch
    assert pipe.state.decisions > 20
