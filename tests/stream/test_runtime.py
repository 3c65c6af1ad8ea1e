"""A stage stops by itself when it stops hearing its supervisor (the fallback to the parent-death signal)."""
import time

import zmq

from stream.config import StreamConfig
from stream.messages import ControlMsg
from stream.runtime import StageRuntime


def test_a_stage_that_stops_hearing_the_supervisor_stops(monkeypatch):
    import signal

    old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    ctx = zmq.Context()
    control = ctx.socket(zmq.PUB)
    control.linger = 0
    port = control.bind_to_random_port("tcp://127.0.0.1")
    events = ctx.socket(zmq.SUB)
    events.linger = 0
    eport = events.bind_to_random_port("tcp://127.0.0.1")
    cfg = StreamConfig(heartbeat_s=0.05, orphan_timeout_s=0.5)
    rt = StageRuntime("windower", cfg, f"tcp://127.0.0.1:{eport}", f"tcp://127.0.0.1:{port}")
    try:
        end = time.time() + 1.5  # the supervisor says "alive" every heartbeat: the stage keeps running
        while time.time() < end:
            control.send_multipart(ControlMsg("alive").to_frames())
            time.sleep(0.05)
            rt.check_control()
        assert not rt.stopping
        time.sleep(0.7)  # then silence (a supervisor gone without a parent-death signal, or hung)
        rt.check_control()
        assert rt.stopping and "no word from the supervisor" in rt.info["stopped"]
    finally:
        rt.close()
        control.close()
        events.close()
        ctx.term()
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])
