"""Remote dashboard (`cagereid dashboard`): attach to a running `cagereid serve` from anywhere.

Serve (``--dashboard-bind HOST:PORT``) republishes every decision and stats message it accepted on a PUB socket;
`Monitor` subscribes, validates each message again (`stream.messages.decode`: a dashboard trusts nothing it
receives), and keeps its own `DashboardState` and `Handovers`, so it shows what serve's own dashboard shows (tracks
with their cameras, cameras, refused keys, handovers, stage health; not the restart counts, which only the
supervisor knows). With keys the connection is CURVE: the viewer holds its own key pair and serve's public key, and
serve admits only the viewer keys in its ``--viewers`` folder. Without keys: a loopback address only.
"""
from __future__ import annotations

import time

from stream.dashboard import DashboardState
from stream.errors import StreamError
from stream.messages import _MAX_HEADER, DecisionMsg, MessageError, StatsMsg, decode
from stream.visitors import Handovers


class Monitor:
    """A SUB socket on serve's dashboard address feeding a `DashboardState` (``poll`` like `Pipeline.poll`)."""

    def __init__(self, connect: str, keys: tuple | None = None, ctx=None) -> None:
        import zmq

        from stream import security
        from stream.camera import is_loopback, parse_address

        host, port = parse_address(connect, "--connect")
        if keys is None and not is_loopback(host):
            raise StreamError(f"--connect {connect}: without --keys/--server-key a dashboard connects to this machine "
                              "only (decisions name people)")
        self._own = ctx is None
        self.ctx = ctx or zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            kp, server_public = keys
            security.client(self.sock, security.StageKeys("viewer", kp, {"monitor": server_public}), "monitor",
                            _MAX_HEADER)
        else:
            self.sock.maxmsgsize = _MAX_HEADER + security.TRANSPORT_OVERHEAD
        for topic in (DecisionMsg.TOPIC, StatsMsg.TOPIC):
            self.sock.setsockopt(zmq.SUBSCRIBE, topic)
        self.sock.connect(f"tcp://{host}:{port}")
        self.state = DashboardState(title="cagereid serve (remote dashboard)", source=f"cameras -> {host}:{port}")
        self.handovers = Handovers()

    def poll(self, timeout_s: float = 0.05) -> int:
        import zmq

        n = 0
        if not self.sock.poll(int(timeout_s * 1000)):
            self.state.expire_tracks(time.time())
            return 0
        while n < 10000:
            try:
                frames = self.sock.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                break
            n += 1
            try:
                msg = decode(frames, expect=(DecisionMsg, StatsMsg))
            except MessageError:
                self.state.malformed_events += 1
                continue
            if isinstance(msg, DecisionMsg):
                self.state.on_decision(msg)
                h = self.handovers(msg)
                if h is not None:
                    self.state.on_handover(h)
            else:
                self.state.on_stats(msg)
        self.state.expire_tracks(time.time())
        return n

    def close(self) -> None:
        self.sock.close(linger=0)
        if self._own:
            self.ctx.term()


def watch(mon: Monitor, duration: float, dashboard: bool, console) -> str:
    """Show serve's state until ``duration`` (0 = until Ctrl-C/SIGTERM); returns why it stopped."""
    from rich.live import Live

    from stream.dashboard import Terminated, render

    start = time.time()
    try:
        if dashboard and console.is_terminal:
            with Live(render(mon.state), console=console, screen=True, auto_refresh=False) as live:
                last = 0.0
                while not duration or time.time() - start < duration:
                    mon.poll(0.05)
                    if time.time() - last >= 0.25:
                        live.update(render(mon.state), refresh=True)
                        last = time.time()
        else:
            while not duration or time.time() - start < duration:
                mon.poll(0.05)
        return "duration"
    except Terminated:
        return "terminated"
    except KeyboardInterrupt:
        return "interrupted"
