"""Who may speak on the pipeline's buses: ZeroMQ CURVE (encryption + keys) and a ZAP handler that admits peers
by public key.

Every bus (``frames``, ``windows``, ``events``, ``control``) has its own server key pair, held only by the
process that binds it (windower, identify, supervisor, supervisor). Every peer that connects (a stage, or a
test's fault injector) has its own client key pair. The binding process runs a ZAP handler (`Authenticator`)
that admits a client only if its public key is on that bus's allow-list, and tells ZeroMQ the peer's *name*,
which then arrives with every message as its ``User-Id`` (`peer_of`): the supervisor believes a stats message
about "producer" only if the producer's key sent it, and a decision only if identify's did. A process without
the keys (any other local user or program) cannot complete the handshake, so it can neither send nor listen.

`RunKeys.generate()` makes fresh keys at every start-up (``zmq.curve_keypair``, never written to disk). The
supervisor hands each stage only what it needs (`RunKeys.for_stage`: its own client pair, the public keys of
the buses it connects to, the secret of the bus it binds) through the multiprocessing fork server's Unix
socket, never on a command line or in the environment.

Extending to long-lived keys (remote cameras) means: load key pairs from files instead of `generate`, and add
the cameras' public keys to the ``frames`` allow-list (`StageKeys.allow`); nothing else here changes.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import zmq
from zmq.utils import z85

BUSES = ("frames", "windows", "events", "control")
# who binds each bus, and which peers may connect to it
BINDER = {"frames": "windower", "windows": "identify", "events": "supervisor", "control": "supervisor"}
CLIENTS = {"frames": ("producer",), "windows": ("windower",), "events": ("producer", "windower", "identify"),
           "control": ("producer", "windower", "identify")}
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
TRANSPORT_OVERHEAD = 4096  # CURVE box + frame headers on top of a message part's own bytes


@dataclass(frozen=True)
class KeyPair:
    public: bytes  # Z85, 40 bytes
    secret: bytes

    @classmethod
    def generate(cls) -> "KeyPair":
        public, secret = zmq.curve_keypair()
        return cls(public, secret)

    def __repr__(self) -> str:  # never print a secret by accident (logs, tracebacks)
        return f"KeyPair(public={self.public.decode()!r}, secret=...)"


@dataclass(frozen=True)
class StageKeys:
    """What one process holds: its client pair, each bus's server public key, the server pairs of the buses it
    binds, and the allow-lists (public key -> peer name) of those buses."""

    name: str
    client: KeyPair
    server_public: dict[str, bytes]
    server: dict[str, KeyPair] = field(default_factory=dict)
    allow: dict[str, dict[bytes, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RunKeys:
    server: dict[str, KeyPair]  # bus -> server pair
    clients: dict[str, KeyPair]  # peer name -> client pair

    @classmethod
    def generate(cls, extra_peers: tuple[str, ...] = ()) -> "RunKeys":
        """Fresh keys for one run. ``extra_peers`` (tests and `cagereid soak` only) get client keys admitted on
        every bus they may write to (frames, windows, events), to inject faults as an authenticated peer."""
        names = ("producer", "windower", "identify", "supervisor", *extra_peers)
        return cls({bus: KeyPair.generate() for bus in BUSES}, {n: KeyPair.generate() for n in names})

    def allow(self, bus: str) -> dict[bytes, str]:
        peers = list(CLIENTS[bus])
        if bus != "control":
            peers += [n for n in self.clients if n not in (*BINDER.values(), *CLIENTS["events"])]
        return {self.clients[n].public: n for n in peers}

    def for_stage(self, name: str) -> StageKeys:
        binds = [bus for bus, who in BINDER.items() if who == name]
        return StageKeys(name=name, client=self.clients[name],
                         server_public={bus: kp.public for bus, kp in self.server.items()},
                         server={bus: self.server[bus] for bus in binds},
                         allow={bus: self.allow(bus) for bus in binds})


class Authenticator:
    """ZAP handler of one process (one per `zmq.Context`, started before anything binds): admits a CURVE client
    whose key is on the bus's allow-list (the socket's ZAP domain names the bus) and names it by key.

    Counts ``accepted`` and ``rejected`` handshakes (a rejected peer never gets a message through)."""

    def __init__(self, ctx: zmq.Context, allow: dict[str, dict[bytes, str]]) -> None:
        self.allow = {bus: dict(keys) for bus, keys in allow.items()}
        self.accepted = 0
        self.rejected = 0
        self._sock = ctx.socket(zmq.REP)
        self._sock.linger = 0
        self._sock.bind(ZAP_ENDPOINT)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._sock.poll(50):
                continue
            try:
                req = self._sock.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                continue
            version, request_id = (req + [b"", b""])[:2]
            domain = req[2].decode(errors="replace") if len(req) > 2 else ""
            mechanism = req[5] if len(req) > 5 else b""
            key = req[6] if len(req) > 6 else b""
            name = None
            if version == b"1.0" and mechanism == b"CURVE" and len(key) == 32:
                name = self.allow.get(domain, {}).get(z85.encode(key))
            if name is None:
                self.rejected += 1
                reply = [b"1.0", request_id, b"400", b"key not allowed on this bus", b"", b""]
            else:
                self.accepted += 1
                reply = [b"1.0", request_id, b"200", b"OK", name.encode(), b""]
            try:
                self._sock.send_multipart(reply)
            except zmq.ZMQError:
                pass
        self._sock.close(linger=0)

    def stop(self) -> None:
        """Stop the handler and close its socket (before ``ctx.term()``)."""
        self._stop.set()
        self._thread.join(2.0)


def serve(sock: zmq.Socket, keys: StageKeys, bus: str, max_part: int) -> None:
    """Make ``sock`` the CURVE server of ``bus`` (call before ``bind``); refuse parts over ``max_part`` bytes."""
    kp = keys.server[bus]
    sock.curve_server = True
    sock.curve_publickey, sock.curve_secretkey = kp.public, kp.secret
    sock.zap_domain = bus.encode()
    sock.maxmsgsize = max_part + TRANSPORT_OVERHEAD


def client(sock: zmq.Socket, keys: StageKeys, bus: str, max_part: int) -> None:
    """Make ``sock`` a CURVE client of ``bus`` (call before ``connect``); refuse parts over ``max_part`` bytes."""
    sock.curve_serverkey = keys.server_public[bus]
    sock.curve_publickey, sock.curve_secretkey = keys.client.public, keys.client.secret
    sock.maxmsgsize = max_part + TRANSPORT_OVERHEAD


def peer_of(frame: zmq.Frame) -> str:
    """The name the ZAP handler gave the peer that sent this message ("" when unknown)."""
    try:
        return frame.get("User-Id") or ""
    except (zmq.ZMQError, AttributeError):
        return ""
