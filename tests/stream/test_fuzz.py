"""Property-based fuzzing (hypothesis) of every message type and of what each stage loop does with one message:
random and mutated messages are either accepted or raise `MessageError`; nothing else ever escapes, and the
dashboard renders whatever got through."""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from stream.config import StreamConfig
from stream.dashboard import render
from stream.identify import receive_windows
from stream.messages import ControlMsg, DecisionMsg, FrameMsg, MessageError, StatsMsg, WindowMsg, decode
from stream.pipeline import Pipeline
from stream.windower import Windower

F, J = 6, 20


def _templates():
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(2, J, 3)).astype(np.float32)
    return [
        FrameMsg(seq=3, frame=7, t_capture=1.0, t_pub=2.0, tracks=[1, 2], joints=joints, producer="p",
                 labels=["a", ""]).to_frames(),
        WindowMsg(frame=7, t_pub=2.0, tracks=[1], windows=rng.normal(size=(1, F, J, 3)).astype(np.float32),
                  labels=["a"]).to_frames(),
        DecisionMsg(track=1, identity="ana", confidence=0.5, windows=3, score=0.9, best="ana", t_pub=1.0,
                    t_decided=1.1, label="ana").to_frames(),
        StatsMsg(stage="producer", pid=4242, state="finished", t=1.0, counters={"frames": 1.0},
                 info={"error": "x"}).to_frames(),
        ControlMsg("stop").to_frames(),
    ]


TEMPLATES = _templates()
HOSTILE = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**400, -(10**400), 2**63, 2**53 + 1, -1, 0, 10**4000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40), st.sampled_from(["[/", "[bold]x[/bold]", "[/red]", "\x1b[2J", "x" * 70000]),
    st.none(), st.booleans(),
    st.lists(st.integers(min_value=-(2**70), max_value=2**70), max_size=5),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=4),
)


@st.composite
def mutated(draw):
    frames = [bytes(f) for f in draw(st.sampled_from(TEMPLATES))]
    head = json.loads(frames[1])
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.integers(0, 6))
        if kind == 0:  # a header field gets a hostile value
            head[draw(st.sampled_from(sorted(head)))] = draw(HOSTILE)
        elif kind == 1 and isinstance(head.get("arrays"), list) and head["arrays"]:  # shape / dtype changes
            spec = head["arrays"][draw(st.integers(0, len(head["arrays"]) - 1))]
            if isinstance(spec, dict):
                spec[draw(st.sampled_from(["shape", "dtype", "name"]))] = draw(st.one_of(
                    HOSTILE, st.lists(st.integers(-3, 2**40), max_size=7),
                    st.sampled_from(["float64", "uint8", "bool", "int64", "object"])))
        elif kind == 2 and len(frames) > 2:  # a buffer is cut, grown or replaced
            i = draw(st.integers(2, len(frames) - 1))
            frames[i] = draw(st.one_of(st.binary(max_size=64), st.just(frames[i][:-4]), st.just(frames[i] + b"\0" * 4),
                                       st.just(np.full(len(frames[i]) // 4, np.nan, np.float32).tobytes())))
        elif kind == 3:  # parts dropped or added
            frames = frames[: draw(st.integers(0, len(frames)))] + draw(st.lists(st.binary(max_size=16), max_size=2))
        elif kind == 4 and frames:  # another topic
            frames[0] = draw(st.sampled_from([b"frame", b"window", b"decision", b"stats", b"control", b"", b"\xff"]))
        elif kind == 5:  # a key removed or added
            if draw(st.booleans()) and head:
                head.pop(draw(st.sampled_from(sorted(head))))
            else:
                head[draw(st.text(max_size=8))] = draw(HOSTILE)
        else:  # raw byte flips in the JSON text
            frames_1 = bytearray(json.dumps(head).encode())
            for _ in range(draw(st.integers(1, 4))):
                if frames_1:
                    frames_1[draw(st.integers(0, len(frames_1) - 1))] = draw(st.integers(0, 255))
            if len(frames) > 1:
                frames[1] = bytes(frames_1)
            continue
        if len(frames) > 1:
            try:
                frames[1] = json.dumps(head).encode()
            except (ValueError, OverflowError, RecursionError):
                pass
    return frames


RANDOM = st.lists(st.binary(max_size=200), max_size=5)
MESSAGES = st.one_of(mutated(), RANDOM)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(MESSAGES)
def test_decode_raises_only_message_error(frames):
    try:
        msg = decode(frames)
    except MessageError:
        return
    assert type(msg) in (FrameMsg, WindowMsg, DecisionMsg, StatsMsg, ControlMsg)


@FUZZ
@given(st.lists(MESSAGES, min_size=1, max_size=4))
def test_windower_and_identify_loops_take_or_count_every_message(batch):
    w = Windower(F, stride=1, track_timeout_s=3.0, J=J)
    for i, frames in enumerate(batch):
        try:
            msg, out = w.receive(frames, now=float(i), max_tracks=64)
            assert msg.joints.shape[1] == J and all(win.window.shape == (F, J, 3) for win in out)
        except MessageError:
            pass
        try:
            items = receive_windows(frames, F, J)
            assert all(np.isfinite(x.window).all() and x.window.shape == (F, J, 3) for x in items)
        except MessageError:
            pass


@pytest.fixture(scope="module")
def pipe():
    p = Pipeline(StreamConfig(), "synthetic")
    yield p
    p.ctx.term()


@FUZZ
@given(st.lists(MESSAGES, min_size=1, max_size=4), st.sampled_from(["identify", "producer", "tester", ""]))
def test_supervisor_counts_every_event_and_the_dashboard_renders_it(pipe, batch, peer):
    before = pipe.state.decisions + pipe.state.malformed_events + pipe.state.spoofed_events
    handled = [pipe.handle_event(frames, peer) for frames in batch]
    counted = pipe.state.decisions + pipe.state.malformed_events + pipe.state.spoofed_events
    assert counted - before == sum(h in ("decision", "malformed", "spoofed") for h in handled)
    assert all(h in ("decision", "stats", "late", "malformed", "spoofed") for h in handled)
    Console(width=100, file=open("/dev/null", "w")).print(render(pipe.state))


def test_the_issue_s_killer_messages_are_malformed():
    """`10**400` in any timestamp, seq or confidence was an OverflowError that killed the stage or the run."""
    for i, template in enumerate(TEMPLATES[:4]):
        head = json.loads(template[1])
        for key in ("t_capture", "t_pub", "seq", "confidence", "t", "t_decided", "track", "tracks"):
            if key in head:
                bad = dict(head, **{key: [10**400] * len(head[key]) if isinstance(head[key], list) else 10**400})
                with pytest.raises(MessageError):
                    decode([template[0], json.dumps(bad).encode(), *template[2:]])
    deep = b'{"v": 2, "arrays": ' + b"[" * 20000 + b"]" * 20000 + b"}"
    with pytest.raises(MessageError):
        decode([b"frame", deep])
