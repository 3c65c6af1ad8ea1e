"""Messages survive a ZeroMQ round trip bit for bit; malformed input raises MessageError (never crashes)."""
import json

import numpy as np
import pytest
import zmq

from stream.messages import (SCHEMA_VERSION, ControlMsg, DecisionMsg, FrameMsg, MessageError, StatsMsg, WindowMsg,
                             decode)


_N = iter(range(10**6))


def _roundtrip(msg):
    ctx = zmq.Context.instance()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    addr = f"inproc://roundtrip-{next(_N)}"  # a fresh endpoint each time (unbinding is asynchronous)
    a.bind(addr)
    b.connect(addr)
    try:
        a.send_multipart(msg.to_frames())
        assert b.poll(1000)
        return decode(b.recv_multipart())
    finally:
        a.close()
        b.close()


def test_frame_roundtrip_keeps_arrays_and_nan():
    joints = np.random.default_rng(0).normal(size=(2, 20, 3)).astype(np.float32)
    joints[1, 3] = np.nan
    valid = np.isfinite(joints).all(2)
    m = FrameMsg(seq=12, frame=99, t_capture=1.5, t_pub=2.5, tracks=[7, 9], joints=joints, valid=valid,
                 producer="p1", labels=["ana", ""])
    out = _roundtrip(m)
    assert isinstance(out, FrameMsg)
    assert (out.tracks, out.seq, out.frame, out.t_pub, out.producer, out.labels) == ([7, 9], 12, 99, 2.5, "p1",
                                                                                      ["ana", ""])
    np.testing.assert_array_equal(out.joints, joints)
    np.testing.assert_array_equal(out.valid, valid)


def test_window_decision_stats_control_roundtrip():
    w = np.arange(2 * 6 * 20 * 3, dtype=np.float32).reshape(2, 6, 20, 3)
    out = _roundtrip(WindowMsg(frame=5, t_pub=3.0, tracks=[1, 4], windows=w, labels=["x", "y"]))
    np.testing.assert_array_equal(out.windows, w)
    assert (out.tracks, out.labels, out.frame, out.t_pub) == ([1, 4], ["x", "y"], 5, 3.0)
    d = DecisionMsg(track=2, identity="ana", confidence=0.8, windows=9, score=0.91, best="ana", t_pub=1.0,
                    t_decided=1.01)
    assert _roundtrip(d) == d
    s = StatsMsg(stage="windower", pid=42, state="running", t=5.0, counters={"frames": 3.0}, info={"a": "b"})
    assert _roundtrip(s) == s
    assert _roundtrip(ControlMsg("stop")).command == "stop"


def _frames(header_update=None, arrays=None, topic=b"frame"):
    m = FrameMsg(seq=0, frame=0, t_capture=0.0, t_pub=0.0, tracks=[1], joints=np.zeros((1, 20, 3), np.float32))
    frames = m.to_frames()
    head = json.loads(frames[1])
    head.update(header_update or {})
    return [topic, json.dumps(head).encode()] + (frames[2:] if arrays is None else arrays)


@pytest.mark.parametrize("frames", [
    [b"frame"],  # no header
    [b"frame", b"not json"],
    [b"frame", b"[1, 2]"],
    _frames({"v": SCHEMA_VERSION + 1}),  # other schema version
    _frames({"seq": "seven"}),  # wrong type
    _frames({"seq": True}),  # bool is not an int here
    _frames({"tracks": [1, 2]}),  # two track ids for one skeleton
    _frames({"tracks": ["1"]}),
    _frames({"tracks": [4, 4], "labels": ["", ""], "arrays": [{"name": "joints", "dtype": "float32", "shape": [2, 10, 3]},
                                                           {"name": "valid", "dtype": "bool", "shape": [2, 10]}]}),
    _frames({"labels": [3]}),
    _frames({"t_pub": None}),
    _frames(arrays=[b"\x00" * 10, b"\x01" * 20]),  # byte count does not match the shape
    _frames(arrays=[b"\x00" * 240]),  # one buffer missing
    _frames({"arrays": [{"name": "joints", "dtype": "object", "shape": [1, 20, 3]},
                        {"name": "valid", "dtype": "bool", "shape": [1, 20]}]}),  # dtype not whitelisted
    _frames({"arrays": [{"name": "joints", "dtype": "float32", "shape": [1, 20, -3]},
                        {"name": "valid", "dtype": "bool", "shape": [1, 20]}]}),
    _frames(topic=b"evil"),
])
def test_malformed_messages_raise_message_error(frames):
    with pytest.raises(MessageError):
        decode(frames)


def test_window_with_nan_is_rejected_and_unexpected_type_too():
    w = np.zeros((1, 6, 20, 3), np.float32)
    w[0, 0, 0, 0] = np.nan
    with pytest.raises(MessageError):
        decode(WindowMsg(frame=0, t_pub=0.0, tracks=[1], windows=w).to_frames())
    good = WindowMsg(frame=0, t_pub=0.0, tracks=[1], windows=np.zeros((1, 6, 20, 3), np.float32)).to_frames()
    with pytest.raises(MessageError):
        decode(good, expect=(FrameMsg,))
