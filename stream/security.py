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

Remote cameras (`cagereid serve` / `cagereid camera`) use long-lived keys on the ``frames`` bus only: `cagereid keys`
writes a key pair in ZeroMQ's own certificate format (``NAME.key`` public, ``NAME.key_secret`` secret, mode 0600,
written atomically; `write_keypair`, read back by `load_keypair` with ``zmq.auth.load_certificate``). Serve's frames
server pair is its long-lived pair, and the frames allow-list is the folder of camera public keys it was given
(`load_allowed`: each ``NAME.key`` admits camera ``NAME``, and the windower accepts frames from that key only under
that camera name). A key that is not on the list never completes the handshake: the ZAP handler counts it
(``rejected``, ``refused_keys``), and the windower shows both on the dashboard. The internal buses keep the per-run
keys. Without keys serve's frames bus is plain TCP (`StageKeys.plain`) and binds 127.0.0.1 only.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import zmq
from zmq.utils import z85

from stream.errors import StreamError

BUSES = ("frames", "windows", "events", "control")
# who binds each bus, and which peers may connect to it (identify: every identify worker, "identify", "identify-1"...)
BINDER = {"frames": "windower", "windows": "identify", "events": "supervisor", "control": "supervisor"}
CLIENTS = {"frames": ("producer",), "windows": ("windower",), "events": ("producer", "windower", "identify"),
           "control": ("producer", "windower", "identify")}
MAX_ALLOWED = 10000  # camera keys in one --allow folder at most
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

    def check(self) -> "KeyPair":
        """Both keys well formed (40 Z85 characters) and the public key the secret's own."""
        try:
            ok = (len(self.public) == 40 and len(self.secret) == 40 and len(z85.decode(self.public)) == 32
                  and zmq.curve_public(self.secret) == self.public)
        except (ValueError, KeyError, TypeError, zmq.ZMQError):
            ok = False
        if not ok:
            raise ValueError("not a CURVE key pair (or the public key does not belong to the secret key)")
        return self

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
    plain: tuple[str, ...] = ()  # buses without CURVE (serve's frames bus without --keys: 127.0.0.1 only)
    cameras: frozenset = frozenset()  # frames peers that are long-lived camera keys (their name = their camera)


def worker_names(workers: int) -> tuple[str, ...]:
    from stream.messages import worker_name

    return tuple(worker_name(k) for k in range(workers))


@dataclass(frozen=True)
class RunKeys:
    server: dict[str, KeyPair]  # bus -> server pair
    clients: dict[str, KeyPair]  # peer name -> client pair
    extra_peers: tuple[str, ...] = ()
    workers: int = 1
    cameras: dict[bytes, str] = field(default_factory=dict)  # long-lived camera public keys -> camera name
    plain: tuple[str, ...] = ()

    @classmethod
    def generate(cls, extra_peers: tuple[str, ...] = (), workers: int = 1, frames_server: KeyPair | None = None,
                 cameras: dict[bytes, str] | None = None, plain_frames: bool = False) -> "RunKeys":
        """Fresh keys for one run. ``extra_peers`` (tests and `cagereid soak` only) get client keys admitted on
        every bus they may write to (frames, windows, events), to inject faults as an authenticated peer.
        ``workers`` identify workers each get their own client pair (they share the windows server pair: each
        binds its own port). Serve: ``frames_server`` (its long-lived pair) and ``cameras`` (public key -> name)
        replace the frames bus's run keys, or ``plain_frames`` leaves that bus without CURVE."""
        names = ("producer", "windower", *worker_names(workers), "supervisor", *extra_peers)
        server = {bus: KeyPair.generate() for bus in BUSES}
        if frames_server is not None:
            server["frames"] = frames_server
        return cls(server, {n: KeyPair.generate() for n in names}, tuple(extra_peers), workers, dict(cameras or {}),
                   ("frames",) if plain_frames else ())

    def _peers(self, bus: str) -> list[str]:
        out = []
        for n in CLIENTS[bus]:
            out += list(worker_names(self.workers)) if n == "identify" else [n]
        return out + (list(self.extra_peers) if bus != "control" else [])

    def allow(self, bus: str) -> dict[bytes, str]:
        allowed = {self.clients[n].public: n for n in self._peers(bus)}
        if bus == "frames":
            allowed.update(self.cameras)
        return allowed

    def for_stage(self, name: str) -> StageKeys:
        from stream.messages import is_identify

        role = "identify" if is_identify(name) else name
        binds = [bus for bus, who in BINDER.items() if who == role]
        return StageKeys(name=name, client=self.clients[name],
                         server_public={bus: kp.public for bus, kp in self.server.items()},
                         server={bus: self.server[bus] for bus in binds},
                         allow={bus: self.allow(bus) for bus in binds if bus not in self.plain},
                         plain=self.plain, cameras=frozenset(self.cameras.values()))


# --- long-lived keys (cagereid keys / serve / camera) ----------------------------------------------------------
_BANNER = ("#   ****  Generated by cagereid keys  ****\n#   ZeroMQ CURVE {what} Certificate\n"
           "#   {note}\n\nmetadata\ncurve\n")


def _atomic_write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # whatever the umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_keypair(out: str | Path, name: str, force: bool = False) -> tuple[Path, Path]:
    """Make a CURVE key pair and write ``OUT/NAME.key`` (public, 0644) and ``OUT/NAME.key_secret`` (0600), in
    ZeroMQ's certificate format, each atomically (temp file + rename). An existing pair is kept unless ``force``."""
    from stream.messages import check_camera

    check_camera(name, "key name", allow_empty=False)
    out = Path(out)
    public, secret = out / f"{name}.key", out / f"{name}.key_secret"
    if not force and (public.exists() or secret.exists()):
        raise StreamError(f"{secret}: a key pair called {name!r} exists already (keep it, or pass --force to "
                          "replace it: every peer that trusts the old public key must then get the new one)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        kp = KeyPair.generate()
        _atomic_write(secret, _BANNER.format(what="**Secret**", note="Keep it secret: mode 0600, never copy it.")
                      + f'    public-key = "{kp.public.decode()}"\n    secret-key = "{kp.secret.decode()}"\n', 0o600)
        _atomic_write(public, _BANNER.format(what="Public", note="Give this file to the peers that must trust it.")
                      + f'    public-key = "{kp.public.decode()}"\n', 0o644)
    except OSError as exc:
        raise StreamError(f"{out}: cannot write the key pair ({exc.strerror or exc})") from None
    return public, secret


def _secret_file(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob("*.key_secret"))
        if len(found) != 1:
            raise StreamError(f"{p}: needs exactly one NAME.key_secret file (found {len(found)}); make one with "
                              f"cagereid keys --out {p} --name NAME, or give the file itself")
        return found[0]
    return p


def load_keypair(path: str | Path) -> tuple[str, KeyPair]:
    """``(name, key pair)`` from a secret certificate file (or a folder holding exactly one). Refused with one line:
    a missing or malformed file, a secret file others can read (``chmod 600``)."""
    p = _secret_file(path)
    if not p.is_file():
        raise StreamError(f"{p}: no such key file (make one with cagereid keys --out DIR --name NAME)")
    if os.name == "posix" and p.stat().st_mode & 0o077:
        raise StreamError(f"{p}: the secret key is readable by other users (chmod 600 {p})")
    try:
        from zmq.auth import load_certificate

        public, secret = load_certificate(p)
        if not secret:
            raise ValueError("no secret-key in it (this is a public key file)")
        kp = KeyPair(public, secret).check()
    except (OSError, ValueError) as exc:
        raise StreamError(f"{p}: not a usable secret key file ({exc})") from None
    name = p.name[: -len(".key_secret")] if p.name.endswith(".key_secret") else p.stem
    return name, kp


def load_public(path: str | Path) -> bytes:
    """The public key in a certificate file (``NAME.key``; a secret file works too)."""
    p = Path(path)
    try:
        from zmq.auth import load_certificate

        public, _ = load_certificate(p)
        if len(public) != 40 or len(z85.decode(public)) != 32:
            raise ValueError("malformed public-key")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StreamError(f"{p}: not a usable public key file ({exc})") from None
    return public


def load_allowed(folder: str | Path) -> dict[bytes, str]:
    """Every ``NAME.key`` in ``folder`` -> ``{public key: NAME}`` (the camera names serve accepts them under)."""
    from stream.messages import MessageError, check_camera

    d = Path(folder)
    if not d.is_dir():
        raise StreamError(f"{d}: no such folder of allowed camera keys (copy each camera's NAME.key into it)")
    out: dict[bytes, str] = {}
    for p in sorted(d.glob("*.key"))[:MAX_ALLOWED]:
        try:
            name = check_camera(p.stem, f"{p}: file name", allow_empty=False)
        except MessageError as exc:
            raise StreamError(str(exc)) from None
        key = load_public(p)
        if key in out:
            raise StreamError(f"{p}: the same key as {out[key]}.key (one key per camera)")
        out[key] = name
    if not out:
        raise StreamError(f"{d}: no camera public keys (*.key) in this folder")
    return out


class Authenticator:
    """ZAP handler of one process (one per `zmq.Context`, started before anything binds): admits a CURVE client
    whose key is on the bus's allow-list (the socket's ZAP domain names the bus) and names it by key.

    Counts ``accepted`` and ``rejected`` handshakes (a rejected peer never gets a message through)."""

    def __init__(self, ctx: zmq.Context, allow: dict[str, dict[bytes, str]]) -> None:
        self.allow = {bus: dict(keys) for bus, keys in allow.items()}
        self.accepted = 0
        self.rejected = 0
        self.refused_keys: set[bytes] = set()  # distinct public keys refused (at most MAX_ALLOWED remembered)
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
                if len(key) == 32 and len(self.refused_keys) < MAX_ALLOWED:
                    self.refused_keys.add(bytes(key))
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
    sock.maxmsgsize = max_part + TRANSPORT_OVERHEAD
    if bus in keys.plain:
        return
    kp = keys.server[bus]
    sock.curve_server = True
    sock.curve_publickey, sock.curve_secretkey = kp.public, kp.secret
    sock.zap_domain = bus.encode()
    sock.maxmsgsize = max_part + TRANSPORT_OVERHEAD


def client(sock: zmq.Socket, keys: StageKeys, bus: str, max_part: int) -> None:
    """Make ``sock`` a CURVE client of ``bus`` (call before ``connect``); refuse parts over ``max_part`` bytes."""
    sock.maxmsgsize = max_part + TRANSPORT_OVERHEAD
    if bus in keys.plain:
        return
    sock.curve_serverkey = keys.server_public[bus]
    sock.curve_publickey, sock.curve_secretkey = keys.client.public, keys.client.secret
    sock.maxmsgsize = max_part + TRANSPORT_OVERHEAD


def peer_of(frame: zmq.Frame) -> str:
    """The name the ZAP handler gave the peer that sent this message ("" when unknown)."""
    try:
        return frame.get("User-Id") or ""
    except (zmq.ZMQError, AttributeError):
        return ""
