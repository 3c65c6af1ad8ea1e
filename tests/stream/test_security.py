"""The buses admit only the run's own processes (CURVE + ZAP), name every sender by its key, and refuse parts
bigger than ZMQ_MAXMSGSIZE."""
import time

import pytest
import zmq

from stream import security
from stream.messages import max_part_bytes


@pytest.fixture()
def bus():
    """A windower-like CURVE server on the frames bus, with its ZAP handler, in its own context."""
    keys = security.RunKeys.generate(extra_peers=("tester",))
    ctx = zmq.Context()
    mine = keys.for_stage("windower")
    auth = security.Authenticator(ctx, mine.allow)
    pull = ctx.socket(zmq.PULL)
    pull.linger = 0
    security.serve(pull, mine, "frames", max_part=1000)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    other = zmq.Context()
    yield keys, pull, f"tcp://127.0.0.1:{port}", auth, other
    other.destroy(linger=0)
    pull.close(0)
    auth.stop()
    ctx.term()


def _client(ctx, keys, name, addr, max_part=1 << 20):
    s = ctx.socket(zmq.PUSH)
    s.linger = 0
    security.client(s, keys.for_stage(name) if name in ("producer", "windower", "identify")
                    else security.StageKeys(name, keys.clients[name], {b: k.public for b, k in keys.server.items()}),
                    "frames", max_part)
    s.connect(addr)
    return s


def _drain(sock, seconds=1.5):
    got, end = [], time.time() + seconds
    while time.time() < end:
        if sock.poll(50):
            try:  # NOBLOCK, as the stages: a part refused mid-message makes poll() fire with nothing to read
                frames = sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                continue
            got.append((frames[0].bytes, security.peer_of(frames[0])))
    return got


def test_only_allowed_keys_get_through_and_every_message_names_its_sender(bus):
    keys, pull, addr, auth, ctx = bus
    producer = _client(ctx, keys, "producer", addr)
    tester = _client(ctx, keys, "tester", addr)
    identify = _client(ctx, keys, "identify", addr)  # a run key, but not allowed on the frames bus
    plain = ctx.socket(zmq.PUSH)  # no keys at all
    plain.linger = 0
    plain.connect(addr)
    stranger = ctx.socket(zmq.PUSH)  # made-up keys
    stranger.linger = 0
    stranger.curve_serverkey = keys.server["frames"].public
    stranger.curve_publickey, stranger.curve_secretkey = zmq.curve_keypair()
    stranger.connect(addr)
    for s, tag in ((producer, b"p"), (tester, b"t"), (identify, b"i"), (plain, b"x"), (stranger, b"s")):
        try:
            s.send_multipart([tag, b"{}"], flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # PUSH without an accepted peer: nothing can go anywhere
    got = _drain(pull)
    assert sorted(got) == [(b"p", "producer"), (b"t", "tester")]
    assert auth.rejected >= 2 and auth.accepted == 2


def test_a_part_over_maxmsgsize_is_refused_by_the_transport(bus):
    keys, pull, addr, auth, ctx = bus
    producer = _client(ctx, keys, "producer", addr)
    producer.send_multipart([b"big", b"\0" * (1 << 20)])
    assert _drain(pull, 1.0) == []  # the connection is dropped; the receiver never buffers the part
    for _ in range(40):  # the sender reconnects by itself and small messages flow again
        try:
            producer.send_multipart([b"small", b"{}"], flags=zmq.NOBLOCK)
        except zmq.Again:
            pass
        got = _drain(pull, 0.1)
        if got:
            break
    assert got and got[0] == (b"small", "producer")


def test_each_stage_gets_only_what_it_needs_and_secrets_never_print():
    keys = security.RunKeys.generate()
    producer = keys.for_stage("producer")
    assert producer.server == {} and producer.allow == {}  # binds nothing: holds no server secret
    windower = keys.for_stage("windower")
    assert set(windower.server) == {"frames"} and set(windower.allow["frames"].values()) == {"producer"}
    sup = keys.for_stage("supervisor")
    assert set(sup.server) == {"events", "control"}
    assert set(sup.allow["events"].values()) == {"producer", "windower", "identify"}
    assert keys.clients["producer"].secret.decode() not in repr(producer)
    assert keys.for_stage("identify").client != producer.client  # one key pair per stage
    assert security.RunKeys.generate().server["frames"] != keys.server["frames"]  # new keys every run


def test_maxmsgsize_bound_fits_the_largest_legal_message():
    import numpy as np

    from stream.messages import WindowMsg

    f, J, tracks = 6, 20, 64
    msg = WindowMsg(frame=0, t_pub=1.0, tracks=list(range(tracks)), windows=np.zeros((tracks, f, J, 3), np.float32),
                    labels=["x" * 64] * tracks)
    assert max(len(p) for p in msg.to_frames()) <= max_part_bytes(tracks, f, J)
