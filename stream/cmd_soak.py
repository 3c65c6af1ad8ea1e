"""`cagereid soak`: run the live pipeline under faults and report what it survived.

Phases (each optional), on an endless synthetic source with a few enrolled walkers:

1. **malformed**: N random and mutated messages (hostile values such as ``10**400``, wrong types, cut or grown
   buffers, wrong shapes, flipped bytes, other topics, valid messages from the wrong sender) sent by an
   authenticated fault injector (a buggy peer) into the frames, windows and events buses. Every one must be
   counted (``malformed`` in the windower and identify, malformed/spoofed events in the supervisor) or
   accepted as valid, and no stage may die.
2. **intruders**: processes without the run's keys (no keys, or made-up keys) send to every bus: nothing gets
   through.
3. **oversize**: a message part far above ``ZMQ_MAXMSGSIZE``: refused by the transport; the stage's memory
   does not grow.
4. **spoofing**: a "finished" stats message with the producer's pid and a decision for "mallory", as an
   authenticated peer that is not the producer / identify: ignored (and the producer still restarts when killed).
5. **kills**: each stage SIGKILLed ``--kills`` times, kills ``--kill-every`` seconds apart (round robin): the time
   from the kill to the first decision on a frame published after it.
6. **stops**: ``cagereid live`` as a child process stopped each way (``duration``, source ``finished``, SIGINT,
   SIGTERM, SIGKILL of the supervisor): its exit status, whether it printed its summary, and whether any of its
   processes is left running.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HELP = "Soak test of the live pipeline: malformed floods, intruders, stage kills, every way of stopping"

STOPS = ("duration", "finished", "sigint", "sigterm", "sigkill")
KILL_TARGET_S = {"producer": 2.0, "windower": 2.0, "identify": 4.0}  # decisions must resume within this


def add_arguments(p: argparse.ArgumentParser) -> None:
    from stream.options import add_common

    add_common(p)
    p.add_argument("--malformed", type=int, default=10000, help="malformed/mutated messages to send (default 10000)")
    p.add_argument("--kills", type=int, default=10, help="kills per stage (default 10)")
    p.add_argument("--kill-every", type=float, default=15.0, help="seconds between kills (default 15; the restart "
                   "budget allows restart_budget deaths of one stage per restart_window_s)")
    p.add_argument("--stages", default="producer,windower,identify", help="stages to kill (default: all three)")
    p.add_argument("--stops", default=",".join(STOPS), help=f"ways of stopping `cagereid live` to check, or none "
                   f"(default: {','.join(STOPS)})")
    p.add_argument("--people", type=int, default=3, help="synthetic walkers at once (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mutations (default 0)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")


# --- processes ------------------------------------------------------------------------------------------------
def _proc_stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) of a process from /proc, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """Every living descendant of ``pid``: {pid: start time} (Linux /proc)."""
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _proc_stat(int(entry.name))
            if st is not None:
                parent[int(entry.name)] = st
    out, frontier = {}, [pid]
    while frontier:
        p = frontier.pop()
        for child, (ppid, state, start) in parent.items():
            if ppid == p and child not in out and state != "Z":
                out[child] = start
                frontier.append(child)
    return out


def still_running(procs: dict[int, int]) -> list[int]:
    """The pids of ``procs`` that still run (same start time, not a zombie)."""
    out = []
    for pid, start in procs.items():
        st = _proc_stat(pid)
        if st is not None and st[2] == start and st[1] != "Z":
            out.append(pid)
    return out


def _child_env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def stop_check(way: str, gallery: str | None, model: str | None = None, config: str | None = None,
               people: int = 2, timeout_s: float = 90.0) -> dict:
    """Start ``cagereid live`` as a child process, stop it ``way``, and check nothing of it is left running.

    Returns rc, whether the summary was printed, the seconds until its last process was gone after the stop,
    and the pids left running (should be none)."""
    source = f"synthetic:people={people},frames=90,walks=1" if way == "finished" else f"synthetic:people={people}"
    cmd = [sys.executable, "-m", "cagereid", "live", "--source", source, "--no-dashboard",
           "--gallery", gallery or "none.sqlite"]
    cmd += ["--model", model] if model else []
    cmd += ["--config", config] if config else []
    cmd += ["--duration", "4"] if way == "duration" else []
    if not gallery:
        cmd[cmd.index("--gallery") + 1] = "gallery.sqlite"  # the default: no gallery yet means all unknown
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"cagereid-soak-{os.getpid()}-{way}.out"
    with open(out_path, "w+b") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_child_env(),
                                cwd=Path(gallery).parent if gallery else None)
        seen: dict[int, int] = {}
        end = time.time() + timeout_s
        # the producer starts last, once identify and windower run: three stage processes = all up
        while time.time() < end and proc.poll() is None:
            seen.update(descendants(proc.pid))
            if len(stage_pids(seen)) >= 3:
                break
            time.sleep(0.1)
        time.sleep(1.5)  # decisions flowing
        seen.update(descendants(proc.pid))
        t_stop = time.time()
        if way in ("sigint", "sigterm", "sigkill"):
            proc.send_signal({"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}[way])
        try:
            rc = proc.wait(timeout=max(1.0, end - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        t_exit = time.time()
        left = still_running(seen)
        while left and time.time() - t_exit < 15.0:
            time.sleep(0.05)
            left = still_running(seen)
        gone_s = time.time() - (t_stop if way in ("sigint", "sigterm", "sigkill") else t_exit)
        for pid in left:  # do not leave them behind ourselves
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        out.seek(0)
        text = out.read().decode(errors="replace")
    out_path.unlink(missing_ok=True)
    return {"way": way, "rc": rc, "summary": "stopped:" in text, "processes": len(seen),
            "left_running": len(left), "gone_after_s": round(gone_s, 2), "tail": text[-300:]}


def stage_pids(procs: dict[int, int]) -> list[int]:
    """The running stage processes among ``procs``: the children of the multiprocessing fork server."""
    running = still_running(procs)
    servers = {p for p in running if b"forkserver" in _cmdline(p)}
    return [p for p in running if (_proc_stat(p) or (0,))[0] in servers]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# --- mutated traffic --------------------------------------------------------------------------------------------
HOSTILE = [10**400, -(10**400), 2**63, -1, 1e308, float("nan"), float("inf"), None, True, "x" * 5000, "[/",
           "[bold red]mallory[/]", [], {}, [10**30] * 3, "", 0, -(2**53) - 7]


def templates(J: int, f: int, producer_pid: int, rng) -> dict[str, list[list[bytes]]]:
    """Valid messages of each bus to mutate (fake tracks from 900000 on, so they never touch real ones)."""
    import numpy as np

    from stream.messages import DecisionMsg, FrameMsg, StatsMsg, WindowMsg

    now = time.time()
    joints = rng.normal(size=(2, J, 3)).astype(np.float32)
    return {
        "frames": [FrameMsg(seq=1, frame=1, t_capture=now, t_pub=now, tracks=[900000, 900001], joints=joints,
                            producer="soak", labels=["", ""]).to_frames()],
        "windows": [WindowMsg(frame=1, t_pub=now, tracks=[900002],
                              windows=rng.normal(size=(1, f, J, 3)).astype(np.float32)).to_frames()],
        "events": [DecisionMsg(track=900003, identity="mallory", confidence=1.0, windows=99, score=9.0, best="mallory",
                               t_pub=now - 1e-4, t_decided=now, label="").to_frames(),
                   StatsMsg(stage="producer", pid=producer_pid, state="finished", t=now).to_frames()],
    }


def mutate(frames: list[bytes], rng) -> list[bytes]:
    """One random mutation or two of a valid message (or pure random bytes, one time in eight)."""
    if rng.random() < 0.125:
        return [bytes(rng.integers(0, 256, rng.integers(0, 64), dtype="uint8")) for _ in range(rng.integers(1, 5))]
    frames = list(frames)
    head = json.loads(frames[1])
    for _ in range(int(rng.integers(1, 3))):
        kind = int(rng.integers(0, 7))
        if kind == 0:
            head[str(rng.choice(sorted(head)))] = HOSTILE[int(rng.integers(len(HOSTILE)))]
        elif kind == 1 and head.get("arrays") and isinstance(head["arrays"], list):
            spec = head["arrays"][int(rng.integers(len(head["arrays"])))]
            if isinstance(spec, dict):
                key = str(rng.choice(["shape", "dtype"]))
                spec[key] = ([int(v) for v in rng.integers(-2, 50, rng.integers(0, 5))] if key == "shape"
                             else str(rng.choice(["float64", "uint8", "object", "int64"])))
        elif kind == 2 and len(frames) > 2:
            i = int(rng.integers(2, len(frames)))
            frames[i] = frames[i][: int(rng.integers(0, len(frames[i]) + 1))] + b"\0" * int(rng.integers(0, 8))
        elif kind == 3:
            frames = frames[: int(rng.integers(0, len(frames) + 1))]
        elif kind == 4 and frames:
            frames[0] = bytes(rng.choice([b"frame", b"window", b"decision", b"stats", b"control", b"junk"]))
        elif kind == 5:
            head.pop(str(rng.choice(sorted(head))), None) if head else None
        else:  # a valid message, sent as it is (from the wrong sender on the events bus)
            pass
    if len(frames) > 1:
        text = json.dumps(head).encode()
        if rng.random() < 0.2:  # flip bytes of the JSON text
            b = bytearray(text)
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(len(b)))] = int(rng.integers(0, 256))
            text = bytes(b)
        frames[1] = text
    return frames


def _counter(pipe, stage: str, name: str) -> float:
    row = pipe.state.stages.get(stage)
    return float(row.counters.get(name, 0)) if row else 0.0


def _pids(pipe) -> dict[str, int]:
    return {n: sp.proc.pid for n, sp in pipe.procs.items() if sp.proc is not None}


def flood(pipe, n: int, seed: int = 0) -> dict:
    """Send ``n`` mutated messages as the authenticated peer "soak"; check that each was counted or accepted."""
    import numpy as np
    import zmq

    from stream.identify import receive_windows
    from stream.messages import MessageError
    from stream.windower import Windower

    rng = np.random.default_rng(seed)
    tmpl = templates(pipe.J, pipe.f, pipe.procs["producer"].proc.pid, rng)
    socks = {bus: pipe.peer_socket(zmq.PUB if bus == "events" else zmq.PUSH, bus, "soak") for bus in tmpl}
    for s in socks.values():
        s.setsockopt(zmq.SNDTIMEO, 5000)
        s.setsockopt(zmq.SNDHWM, 100000)
    pipe.run_until(lambda: False, 1.0)  # connections and the events subscription
    pids, restarts = _pids(pipe), {k: sp.restarts for k, sp in pipe.procs.items()}
    base = {"frames": _counter(pipe, "windower", "malformed"), "windows": _counter(pipe, "identify", "malformed"),
            "events": pipe.state.malformed_events + pipe.state.spoofed_events}
    check = Windower(pipe.f, 1, 3.0, J=pipe.J)
    sent = {bus: 0 for bus in tmpl}
    bad = {bus: 0 for bus in tmpl}
    unsent = 0

    def counted() -> dict:
        return {"frames": _counter(pipe, "windower", "malformed") - base["frames"],
                "windows": _counter(pipe, "identify", "malformed") - base["windows"],
                "events": pipe.state.malformed_events + pipe.state.spoofed_events - base["events"]}

    buses = list(tmpl)
    for i in range(n):
        bus = buses[int(rng.integers(len(buses)))]
        frames = []
        while not frames:  # a mutation that leaves no part at all cannot be sent: draw another
            frames = mutate(tmpl[bus][int(rng.integers(len(tmpl[bus])))], rng)
        if bus == "events":
            is_bad = True  # every event from this peer is malformed or spoofed
        else:
            try:
                if bus == "frames":
                    check.receive(frames, time.time(), pipe.cfg.max_tracks)
                else:
                    receive_windows(frames, pipe.f, pipe.J)
                is_bad = False
            except MessageError:
                is_bad = True
        try:
            socks[bus].send_multipart(frames)
        except zmq.ZMQError:
            unsent += 1
            continue
        sent[bus] += 1
        bad[bus] += is_bad
        if i % 200 == 199:  # let the supervisor read the events it was sent (PUB drops beyond its queue)
            pipe.run_until(lambda: counted()["events"] >= bad["events"], 5.0)
    pipe.run_until(lambda: all(counted()[b] >= bad[b] for b in bad), 30.0)
    pipe.run_until(lambda: False, 2 * pipe.cfg.heartbeat_s)  # the last heartbeats: counters settle
    for s in socks.values():
        s.close(linger=0)
    got = counted()
    died = {k: sp.restarts - restarts[k] for k, sp in pipe.procs.items() if sp.restarts != restarts[k]}
    return {"sent": sum(sent.values()), "sent_per_bus": sent, "malformed_expected": bad, "malformed_counted": got,
            "unsent": unsent, "all_counted": all(got[b] == bad[b] for b in bad), "stage_deaths": died,
            "same_pids": pids == _pids(pipe), "mallory_shown": any(r.identity == "mallory" or r.best == "mallory"
                                                                  for r in pipe.state.tracks.values())}


def intruders(pipe, n: int = 300) -> dict:
    """Sockets without the run's keys (none, or made-up ones) send ``n`` valid-looking messages to each bus."""
    import zmq

    from stream.messages import DecisionMsg, StatsMsg

    ctx = zmq.Context()
    before = {"decisions": pipe.state.decisions, "spoofed": pipe.state.spoofed_events,
              "malformed": pipe.state.malformed_events, "windower": _counter(pipe, "windower", "frames"),
              "windower_malformed": _counter(pipe, "windower", "malformed"),
              "identify_malformed": _counter(pipe, "identify", "malformed")}
    fake_pub, fake_secret = zmq.curve_keypair()
    server_pub = {b: kp.public for b, kp in pipe.keys.server.items()}
    socks = []
    for bus in ("frames", "windows", "events"):
        for keyed in (False, True):
            s = ctx.socket(zmq.PUB if bus == "events" else zmq.PUSH)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SNDTIMEO, 0)
            if keyed:
                s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server_pub[bus], fake_pub, fake_secret
            s.connect(pipe.addr[bus])
            socks.append((bus, s))
    pipe.run_until(lambda: False, 1.0)
    now = time.time()
    msgs = [DecisionMsg(track=1, identity="mallory", confidence=1.0, windows=9, score=9.0, best="mallory",
                        t_pub=now, t_decided=now).to_frames(),
            StatsMsg(stage="producer", pid=pipe.procs["producer"].proc.pid, state="finished", t=now).to_frames(),
            [b"frame", b"{}"]]
    tries = 0
    for i in range(n):
        for bus, s in socks:
            try:
                s.send_multipart(msgs[i % len(msgs)], flags=zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
            tries += 1
    pipe.run_until(lambda: False, 2.0)
    for _, s in socks:
        s.close(linger=0)
    ctx.term()
    got = {"decisions_from_intruders": sum(r.identity == "mallory" for r in pipe.state.tracks.values()),
           "events_through": pipe.state.spoofed_events + pipe.state.malformed_events
           - before["spoofed"] - before["malformed"],
           "stage_messages_through": (_counter(pipe, "windower", "malformed") - before["windower_malformed"]
                                      + _counter(pipe, "identify", "malformed") - before["identify_malformed"]),
           "handshakes_rejected_on_events_bus": pipe.auth.rejected}
    return {"attempts": tries, **got, "producer_finished_by_spoof": pipe.producer_finished,
            "nothing_through": got["decisions_from_intruders"] == 0 and got["events_through"] == 0
            and got["stage_messages_through"] == 0 and not pipe.producer_finished}


def oversize(pipe, mb: int = 64) -> dict:
    """An authenticated peer sends one ``mb`` MB part to the windower: the transport refuses it."""
    import zmq

    wpid = pipe.procs["windower"].proc.pid
    rss0 = _rss_mb(wpid)
    s = pipe.peer_socket(zmq.PUSH, "frames", "soak", max_part=1 << 30)
    s.setsockopt(zmq.SNDTIMEO, 5000)
    pipe.run_until(lambda: False, 0.5)
    malformed0 = _counter(pipe, "windower", "malformed")
    try:
        s.send_multipart([b"frame", b"{}", b"\0" * (mb << 20)])
        sent = True
    except zmq.ZMQError:
        sent = False
    pipe.run_until(lambda: False, 3.0)
    s.close(linger=0)
    rss1 = _rss_mb(wpid)
    return {"sent_mb": mb if sent else 0, "windower_rss_mb_before": round(rss0, 1), "after": round(rss1, 1),
            "grew_mb": round(rss1 - rss0, 1), "reached_decoder": _counter(pipe, "windower", "malformed") > malformed0,
            "windower_alive": pipe.procs["windower"].proc.is_alive() and pipe.procs["windower"].proc.pid == wpid}


def kills(pipe, stages: list[str], per_stage: int, every_s: float, log=print) -> dict:
    """SIGKILL each stage ``per_stage`` times (round robin, ``every_s`` apart); time to the first decision on a
    frame published after each kill."""
    out: dict[str, list[float | None]] = {s: [] for s in stages}
    order = [s for _ in range(per_stage) for s in stages]
    last = time.time()
    for i, stage in enumerate(order):
        pipe.run_until(lambda: time.time() - last >= every_s and all(pipe._running(s) for s in pipe.procs
                                                                      if not pipe.procs[s].finished), every_s + 60)
        if pipe.failed:
            break
        t_kill = time.time()
        pipe.kill(stage)
        last = t_kill
        ok = pipe.run_until(lambda: pipe.state.newest_t_pub > t_kill, 30.0)
        resumed = round(pipe.state.last_decision - t_kill, 2) if ok else None
        out[stage].append(resumed)
        log(f"kill {i + 1}/{len(order)}: {stage} -> decisions resumed after "
            f"{'never (30 s)' if resumed is None else f'{resumed:.2f} s'}")
    return {s: {"kills": len(v), "resumed_s": v, "max_s": max((x for x in v if x is not None), default=None),
                "all_within_target": len(v) == per_stage and all(x is not None and x <= KILL_TARGET_S[s] for x in v),
                "target_s": KILL_TARGET_S[s]} for s, v in out.items()} | {"failed": pipe.failed}


def run(args: argparse.Namespace) -> int:
    import tempfile

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from stream.enrol import enrol_synthetic
    from stream.config import load_config
    from stream.errors import StreamError
    from stream.identify import load_encoder
    from stream.pipeline import Pipeline

    stages = [s for s in args.stages.split(",") if s]
    stops = [] if args.stops == "none" else [s for s in args.stops.split(",") if s]
    if any(s not in KILL_TARGET_S for s in stages) or any(s not in STOPS for s in stops):
        raise StreamError(f"--stages takes {','.join(KILL_TARGET_S)}; --stops takes {','.join(STOPS)} or none")
    if args.malformed < 0 or args.kills < 0 or args.kill_every <= 0 or not 1 <= args.people <= 16:
        raise StreamError("need --malformed >= 0, --kills >= 0, --kill-every > 0 and 1 <= --people <= 16")
    cfg = load_config(args.config, device=args.device)
    console = Console()
    results: dict = {"machine": f"{os.cpu_count()} CPUs, {sys.platform}", "model": args.model or "shipped"}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="cagereid-soak-") as tmp:
        gallery = Path(tmp) / "gallery.sqlite"
        console.print("soak: enrolling walkers ...")
        enc = load_encoder(args.model, cfg.device)
        enrol_synthetic(gallery, enc, args.people, min(2, args.people), seed=0, stride=cfg.stride, fps=cfg.fps,
                        walks=2, frames=150)
        source = f"synthetic:people={args.people},frames=150,walks=0,walk_seed=2000"
        with Pipeline(cfg, source, model=args.model, gallery=gallery, extra_peers=("soak",)) as pipe:
            pipe.start()
            if not pipe.run_until(lambda: pipe.state.decisions >= 10, 60):
                raise StreamError("soak: the pipeline made no decisions within 60 s")
            if args.malformed:
                console.print(f"soak: {args.malformed} malformed/mutated messages ...")
                results["malformed"] = flood(pipe, args.malformed, args.seed)
                results["intruders"] = intruders(pipe)
                results["oversize"] = oversize(pipe)
            if stages and args.kills:
                console.print(f"soak: {args.kills} kills per stage, {args.kill_every:g} s apart ...")
                results["kills"] = kills(pipe, stages, args.kills, args.kill_every,
                                         log=lambda m: console.print(m, markup=False))
            results["decisions"] = pipe.state.decisions
            results["failed"] = pipe.failed
        for way in stops:
            console.print(f"soak: stopping `cagereid live` by {way} ...")
            results.setdefault("stops", []).append(stop_check(way, str(gallery), args.model, args.config))
    results["seconds"] = round(time.time() - t0, 1)

    rows, ok = [], True

    def row(fault: str, done: str, happened: str, good: bool) -> None:
        nonlocal ok
        ok &= bool(good)
        rows.append((fault, done, happened, good))

    if "malformed" in results:
        m = results["malformed"]
        row("malformed / mutated messages", f"{m['sent']} sent (frames {m['sent_per_bus']['frames']}, windows "
            f"{m['sent_per_bus']['windows']}, events {m['sent_per_bus']['events']})",
            f"{sum(m['malformed_counted'].values()):.0f} counted as malformed/spoofed of "
            f"{sum(m['malformed_expected'].values())} invalid, the rest valid; stage deaths "
            f"{sum(m['stage_deaths'].values())}", m["all_counted"] and not m["stage_deaths"] and m["same_pids"]
            and not m["mallory_shown"])
        i = results["intruders"]
        row("processes without the run's keys", f"{i['attempts']} sends to every bus (no keys / made-up keys)",
            f"{i['events_through']} events and {i['stage_messages_through']:.0f} stage messages got through; "
            f"{i['handshakes_rejected_on_events_bus']} made-up key rejected on the events bus", i["nothing_through"])
        o = results["oversize"]
        row("oversize message", f"one {o['sent_mb']} MB part to the windower",
            f"refused by the transport (reached the decoder: {o['reached_decoder']}); windower RSS "
            f"{o['grew_mb']:+.1f} MB, same process", not o["reached_decoder"] and o["windower_alive"]
            and o["grew_mb"] < 16)
    for stage, k in (results.get("kills") or {}).items():
        if stage == "failed":
            continue
        got = [x for x in k["resumed_s"] if x is not None]
        row(f"{stage} killed (SIGKILL)", f"{k['kills']} times, {args.kill_every:g} s apart",
            f"decisions resumed after {min(got, default=float('nan')):.2f}-{max(got, default=float('nan')):.2f} s "
            f"(target {k['target_s']:g} s)", k["all_within_target"])
    for s in results.get("stops", []):
        row(f"supervisor stopped by {s['way']}", f"`cagereid live`, {s['processes']} processes",
            f"exit {s['rc']}, summary {'printed' if s['summary'] else 'MISSING'}, {s['left_running']} left running "
            f"({s['gone_after_s']:.1f} s until all gone)", s["left_running"] == 0
            and (s["way"] == "sigkill" or s["summary"]))
    if results.get("failed"):
        row("restart budget", "", results["failed"], False)

    t = Table(title=f"cagereid soak ({results['seconds']:.0f} s, {results['machine']})")
    for col in ("fault", "what was done", "what happened", ""):
        t.add_column(col)
    for fault, done, happened, good in rows:
        t.add_row(Text(fault), Text(done), Text(happened), Text("ok", "green") if good else Text("FAIL", "bold red"))
    console.print(t)
    if args.json:
        from cages.io import write_json

        write_json(args.json, results)
    return 0 if ok else 1
