"""Several cameras (issue 19): `cagereid keys`, `serve`, `camera`; long-lived CURVE keys; camera names on the wire;
N identify workers; anonymous visitors recognised across cameras; handovers; event-log retention; faults.

The process tests start a serve (`Pipeline` with ``source=None``) in this process and cameras as real
`cagereid camera` processes over TCP on 127.0.0.1, with the test-only fake encoder (stream_fakes.py) and synthetic
walkers with fixed seeds (people=4, seed=0: walkers 0..3 are ana, ben, chen, dara; each camera plays its own walks).
"""
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stream import security
from stream.config import StreamConfig
from stream.dashboard import DashboardState, render
from stream.enrol import enrol_synthetic
from stream.errors import StreamError
from stream.events import EventLog
from stream.identify import load_encoder
from stream.messages import DecisionMsg, FrameMsg, MessageError, decode
from stream.visitors import Handovers, handover_text
from stream.windower import EPOCH, Windower, worker_of

FAKE = "stream_fakes:make_encoder"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


# --- pieces, no processes ---------------------------------------------------------------------------------------
def test_camera_names_travel_in_messages_and_bad_ones_are_malformed():
    m = FrameMsg(seq=0, frame=0, t_capture=0.0, t_pub=1.0, tracks=[3], joints=np.zeros((1, 20, 3), np.float32),
                 camera="cam-2.lobby")
    assert decode(m.to_frames()).camera == "cam-2.lobby"
    d = DecisionMsg(track=1, identity="visitor-3", confidence=1.0, windows=5, score=0.0, best="", t_pub=1.0,
                    t_decided=1.0, camera="cam1", anonymous=True)
    out = decode(d.to_frames())
    assert (out.camera, out.anonymous) == ("cam1", True)
    for bad in ("../etc", "cam 1", "-cam", "x" * 65, "[red]cam"):
        m.camera = bad
        with pytest.raises(MessageError):
            decode(m.to_frames())
    head = json.loads(d.to_frames()[1])
    head["anonymous"] = 1  # not a bool
    with pytest.raises(MessageError):
        decode([b"decision", json.dumps(head).encode()])


def _frame(camera, tracks, producer="p1", t=None, seq=0):
    joints = np.random.default_rng(seq).normal(size=(len(tracks), 20, 3)).astype(np.float32)
    return FrameMsg(seq=seq, frame=seq, t_capture=0.0, t_pub=time.time() if t is None else t, tracks=tracks,
                    joints=joints, producer=producer, camera=camera).to_frames()


def test_windower_keys_tracks_by_camera_binds_names_to_keys_and_renumbers_a_restarted_camera():
    w = Windower(f=2, stride=1, track_timeout_s=10.0, J=20)
    now = time.time()
    for i in range(3):  # the same track id on two cameras: two tracks
        w.receive(_frame("cam1", [0], seq=i), now, 64, serve=True)
        _, out = w.receive(_frame("cam2", [0], seq=i), now, 64, serve=True)
    assert {("cam1", 0), ("cam2", 0)} <= set(w.tracks) and out[0].camera == "cam2"
    # a camera key may only send its own camera's frames; serve needs a camera name
    with pytest.raises(MessageError, match="the key of camera 'cam1'"):
        w.receive(_frame("cam2", [0]), now, 64, peer="cam1", cameras=frozenset({"cam1", "cam2"}), serve=True)
    with pytest.raises(MessageError, match="name their camera"):
        w.receive(_frame("", [0]), now, 64, serve=True)
    # cam1 restarts (new producer instance): its tracks end, its new ids get an epoch; cam2 is untouched
    msg, _ = w.receive(_frame("cam1", [0], producer="p2"), now, 64, serve=True)
    assert msg.tracks == [EPOCH] and ("cam1", 0) not in w.tracks and ("cam2", 0) in w.tracks
    # a publish time off this machine's clock (another machine's clock) becomes the receive time
    msg, _ = w.receive(_frame("cam2", [0], t=now + 60), now, 64, serve=True)
    assert msg.t_pub == now
    g = w.camera_gauges(now)
    assert g["cam.cam1.frames"] == 4 and g["cam.cam2.tracks"] == 1


def _windows(ids, walk_seed, camera, track):
    from stream.messages import Window
    from stream.producer import open_observations
    from stream.windower import windows_of_source

    obs, _ = open_observations(f"synthetic:people=6,ids={ids},frames=150,walks=1,walk_seed={walk_seed}", "kinect_v1",
                               30.0)
    wins = next(iter(windows_of_source(obs, 6, 3, layout="kinect_v1").values()))
    return [Window(track=track, frame=i, t_pub=time.time(), window=w, camera=camera) for i, w in enumerate(wins)]


def test_identifier_gives_an_unknown_walker_a_visitor_id_that_another_worker_recognises(tmp_path, monkeypatch):
    from stream import visitors
    from stream.identify import Identifier

    slow_open = visitors._open

    def _open(*a, **kw):  # a slow database: the loop goes on meanwhile, the track stays unknown until named
        time.sleep(0.4)
        return slow_open(*a, **kw)

    monkeypatch.setattr(visitors, "_open", _open)
    gallery = tmp_path / "g.sqlite"
    enc = load_encoder(FAKE, "cpu")
    enrol_synthetic(gallery, enc, 6, 1, seed=0, stride=3, fps=30, walks=2, frames=150)  # ana
    cfg = StreamConfig(visitor_windows=8, accept_score=-1.0)
    one = Identifier(enc, cfg, gallery, visitors=True)
    seen = []
    try:
        for w in _windows(4, 3000, "cam1", 0):  # eli, whom nobody enrolled
            seen += one.process([w])
            time.sleep(0.02)  # the visitor desk enrols in its thread meanwhile
    finally:
        one.close()
    ids = [d.identity for d in seen]
    assert "" not in ids and ids[7] == "unknown" and ids[-1].startswith("visitor-") and seen[-1].anonymous
    visitor = ids[-1]
    two = Identifier(enc, cfg, gallery)  # another worker / serve process: the visitor is in the shared gallery
    try:
        out = [two.process([w])[0] for w in _windows(4, 4000, "cam2", 0)]  # eli again, another walk, another camera
    finally:
        two.close()
    assert out[-1].identity == visitor and out[-1].anonymous and out[-1].camera == "cam2"


def test_expired_visitors_are_purged_and_enrolled_people_kept(tmp_path):
    from stream.gallery import open_gallery
    from stream.visitors import purge_visitors

    gallery = tmp_path / "g.sqlite"
    enc = load_encoder(FAKE, "cpu")
    enrol_synthetic(gallery, enc, 6, 1, seed=0, stride=3, fps=30, walks=1, frames=150)  # ana
    with open_gallery(gallery) as g:
        name = g.next_visitor_name()
        g.enroll(name, np.ones((3, 15), np.float32), enc.fingerprint, source="cam1 track 4", anonymous=True)
    assert purge_visitors(gallery, 3600.0) == 0  # not expired yet
    time.sleep(0.05)
    assert purge_visitors(gallery, 0.01) == 1
    with open_gallery(gallery, create=False, readonly=True) as g:
        assert [p.name for p in g.people()] == ["ana"]


def test_worker_routing_is_stable_and_spreads_tracks():
    picks = [worker_of("cam1", t, 2) for t in range(200)]
    assert picks == [worker_of("cam1", t, 2) for t in range(200)]  # not Python's salted hash
    assert 60 < sum(picks) < 140 and worker_of("cam1", 5, 1) == 0


def test_handovers_between_cameras():
    h = Handovers()

    def d(cam, track, ident, t, anon=True):
        return DecisionMsg(track=track, identity=ident, confidence=1.0, windows=9, score=0.0, best="", t_pub=t,
                           t_decided=t, camera=cam, anonymous=anon)

    assert h(d("cam1", 4, "visitor-12", 100.0)) is None
    assert h(d("cam1", 4, "visitor-12", 101.0)) is None
    assert h(d("cam1", 5, "unknown", 102.0)) is None
    rec = h(d("cam3", 7, "visitor-12", 115.0))
    assert handover_text(rec) == "visitor-12: cam1 -> cam3 after 14 s" and rec["anonymous"]
    assert h(d("cam3", 7, "visitor-12", 116.0)) is None  # still there: one handover
    # two cameras that overlap: the walker flips between them within REVISIT_S: one handover, not one per decision
    assert h(d("cam2", 1, "ana", 200.0, False)) is None
    assert h(d("cam4", 2, "ana", 202.0, False))["after_s"] == 2.0
    assert h(d("cam2", 1, "ana", 203.0, False)) is None and h(d("cam4", 2, "ana", 204.0, False)) is None
    assert h.count == 2


def test_event_log_handovers_anonymous_flag_and_retention(tmp_path):
    path = tmp_path / "ev.jsonl"
    old = time.time() - 1000
    path.write_text(json.dumps({"schema": 1, "type": "decision", "time": old}) + "\n" + "torn {\n")
    with EventLog(path, retention_s=500) as log:  # lines older than the retention go at start-up
        log(DecisionMsg(track=1, identity="visitor-1", confidence=1.0, windows=9, score=0.0, best="visitor-1",
                        t_pub=time.time(), t_decided=time.time(), camera="cam2", anonymous=True))
        log.handover({"identity": "visitor-1", "anonymous": True, "from_camera": "cam1", "from_track": 3,
                      "camera": "cam2", "track": 1, "time": time.time(), "after_s": 14.0})
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["type"] for r in recs] == ["identity", "decision", "handover"]
    assert recs[0]["camera"] == "cam2" and recs[1]["anonymous"] is True
    assert recs[2]["from_camera"] == "cam1" and recs[2]["after_s"] == 14.0
    with EventLog(path, retention_s=500) as log:  # serve appends: a restart keeps the history
        log.retention_s = 1e-3
        time.sleep(0.01)
        assert log.prune_now() == 3
    assert path.read_text() == ""


def test_dashboard_shows_cameras_refused_keys_and_handovers():
    from rich.console import Console

    st = DashboardState(title="cagereid serve", source="cameras -> tcp://127.0.0.1:5555")
    st.on_decision(DecisionMsg(track=2, identity="visitor-7", confidence=1.0, windows=30, score=0.0, best="",
                               t_pub=time.time(), t_decided=time.time(), camera="lobby", anonymous=True))
    from stream.messages import StatsMsg

    st.on_stats(StatsMsg(stage="windower", pid=1, state="running", t=time.time(),
                         counters={"cam.lobby.frames": 90.0, "cam.lobby.tracks": 1.0, "cam.lobby.age": 0.1,
                                   "cam.lobby.fps": 30.0, "refused_handshakes": 4.0, "refused_keys": 1.0}))
    st.on_handover({"identity": "visitor-7", "anonymous": True, "from_camera": "door", "from_track": 1,
                    "camera": "lobby", "track": 2, "time": time.time(), "after_s": 14.0})
    con = Console(record=True, width=140, height=60)
    con.print(render(st))
    text = con.export_text()
    for want in ("lobby", "visitor-7 (anonymous)", "streaming", "refused camera handshakes 4 (1 unknown keys)",
                 "visitor-7: door -> lobby after 14 s"):
        assert want in text, want


def test_keys_are_written_atomically_private_and_in_zeromq_format(tmp_path):
    import zmq.auth

    public, secret = security.write_keypair(tmp_path / "k", "cam1")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and stat.S_IMODE(public.stat().st_mode) == 0o644
    pub, sec = zmq.auth.load_certificate(secret)
    assert zmq.curve_public(sec) == pub and zmq.auth.load_certificate(public) == (pub, None)
    name, kp = security.load_keypair(tmp_path / "k")  # the folder holding one secret
    assert name == "cam1" and kp.public == pub and sec.decode() not in repr(kp)
    assert security.load_allowed(tmp_path / "k") == {pub: "cam1"}
    with pytest.raises(StreamError, match="exists already"):
        security.write_keypair(tmp_path / "k", "cam1")
    assert [p.name for p in (tmp_path / "k").iterdir() if p.name.startswith(".")] == []  # no temp files left
    os.chmod(secret, 0o644)
    with pytest.raises(StreamError, match="readable by other users"):
        security.load_keypair(secret)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cam9.key").write_text("garbage\n")
    with pytest.raises(StreamError, match="not a usable public key"):
        security.load_allowed(tmp_path / "bad")


def _main(capsys, *argv):
    from cagereid.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_without_keys_serve_binds_loopback_only_and_cameras_connect_locally_only(tmp_path, capsys):
    code, _, err = _main(capsys, "serve", "--bind", "0.0.0.0:5555", "--no-dashboard", "--gallery",
                         str(tmp_path / "g.sqlite"))
    assert code == 2 and err.startswith("error: --bind 0.0.0.0:5555: without --keys") and len(err.splitlines()) == 1
    code, _, err = _main(capsys, "serve", "--keys", str(tmp_path), "--no-dashboard")
    assert code == 2 and "--keys and --allow go together" in err
    code, _, err = _main(capsys, "camera", "--source", "synthetic", "--connect", "10.1.2.3:5555", "--name", "cam1")
    assert code == 2 and "this machine only" in err
    code, _, err = _main(capsys, "serve", "--dashboard-bind", "0.0.0.0:5556", "--no-dashboard")
    assert code == 2 and "--dashboard-bind 0.0.0.0:5556: without --keys" in err
    code, _, err = _main(capsys, "dashboard", "--connect", "10.1.2.3:5556", "--duration", "1")
    assert code == 2 and "this machine only" in err
    code, _, err = _main(capsys, "camera", "--source", "synthetic", "--connect", "127.0.0.1:5555", "--name", "c 1")
    assert code == 2 and "not a camera name" in err
    code, _, _ = _main(capsys, "keys", "--out", str(tmp_path / "keys"), "--name", "serve")
    assert code == 0 and (tmp_path / "keys" / "serve.key_secret").exists()


# --- processes over TCP ------------------------------------------------------------------------------------------
def _camera(name, source, port, keys=None, server_key=None):
    cmd = [sys.executable, "-m", "cagereid", "camera", "--source", source, "--connect", f"127.0.0.1:{port}",
           "--name", name, "--quiet"]
    if keys:
        cmd += ["--keys", str(keys), "--server-key", str(server_key)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]), OMP_NUM_THREADS="1")
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture()
def spawned():
    """Every camera/serve process a test starts goes in here; all are stopped at teardown, pass or fail."""
    procs = []
    yield procs
    _stop(*procs)


def _rows(pipe, camera, label=None):
    return [r for r in pipe.state.tracks.values() if r.camera == camera and (label is None or r.label == label)]


def _named(pipe, camera, label):
    rows = _rows(pipe, camera, label)
    return rows[-1].identity if rows else None


def _stop(*procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


@pytest.mark.slow
def test_two_cameras_over_curve_enrolled_and_visitor_named_on_the_second_camera_wrong_key_refused(tmp_path, spawned):
    from stream.gallery import open_gallery
    from stream.pipeline import Pipeline

    keys, allowed, other = tmp_path / "serve", tmp_path / "allowed", tmp_path / "intruder"
    security.write_keypair(keys, "serve")
    for cam in ("cam1", "cam2"):
        security.write_keypair(tmp_path / cam, cam)
        (allowed).mkdir(exist_ok=True)
        (allowed / f"{cam}.key").write_bytes((tmp_path / cam / f"{cam}.key").read_bytes())
    security.write_keypair(other, "cam3")  # a camera serve was not given
    security.write_keypair(tmp_path / "viewers", "viewer1")  # a remote dashboard serve admits
    gallery = tmp_path / "g.sqlite"
    enrol_synthetic(gallery, load_encoder(FAKE, "cpu"), 6, 1, seed=0, stride=3, fps=30, walks=2, frames=150)  # ana
    _, server = security.load_keypair(keys)
    # the fake encoder's embedding is bone lengths in dm: walks of one walker lie within ~0.6 of each other, ana and
    # eli ~1.7 apart (people=6, seed=0); a fixed acceptance distance of 1.0 keeps the test independent of calibration
    cfg = StreamConfig(heartbeat_s=0.2, visitor_windows=20, accept_score=-1.0)
    procs = spawned
    from stream.monitor import Monitor

    with Pipeline(cfg, None, model=FAKE, gallery=gallery, workers=2, frames_bind="tcp://127.0.0.1:0",
                  camera_keys=(server, security.load_allowed(allowed)), visitors=True,
                  monitor_bind="tcp://127.0.0.1:0", monitor_keys=(server, security.load_allowed(tmp_path / "viewers"))
                  ) as pipe:
        pipe.start(timeout_s=60)
        port = int(pipe.addr["frames"].rsplit(":", 1)[1])
        serve_public = security.load_public(keys / "serve.key")
        viewer = Monitor(pipe.addr["monitor"], (security.load_keypair(tmp_path / "viewers")[1], serve_public))
        snoop = Monitor(pipe.addr["monitor"], (security.load_keypair(other)[1], serve_public))  # not a viewer key
        # cam1: ana (enrolled) and eli (nobody): eli becomes an anonymous visitor
        procs.append(_camera("cam1", "synthetic:people=6,ids=0+4,frames=900,walk_seed=3000", port,
                             tmp_path / "cam1", keys / "serve.key"))
        procs.append(_camera("cam3", "synthetic:people=6,ids=1,frames=900", port, other, keys / "serve.key"))
        # an allowed key (cam2's) claiming to be cam1: its frames are dropped and counted, never shown as cam1's
        procs.append(_camera("cam1", "synthetic:people=6,ids=2,frames=900", port, tmp_path / "cam2", keys / "serve.key"))
        ticks = lambda: (viewer.poll(0), snoop.poll(0))
        assert pipe.run_until(lambda: (_named(pipe, "cam1", "eli") or "").startswith("visitor-")
                              and _named(pipe, "cam1", "ana") == "ana", 60, ticks), \
            [(r.camera, r.label, r.identity, r.windows) for r in pipe.state.tracks.values()]
        visitor = _named(pipe, "cam1", "eli")
        assert _rows(pipe, "cam1", "eli")[-1].anonymous
        # cam2 (its own walks of the same two people): both are named there, the visitor by its visitor id
        procs.append(_camera("cam2", "synthetic:people=6,ids=0+4,frames=900,walk_seed=4000", port,
                             tmp_path / "cam2", keys / "serve.key"))
        assert pipe.run_until(lambda: _named(pipe, "cam2", "eli") == visitor and _named(pipe, "cam2", "ana") == "ana",
                              60, ticks), [(r.camera, r.label, r.identity, r.windows) for r in pipe.state.tracks.values()]
        assert pipe.run_until(lambda: any(h["identity"] == visitor and (h["from_camera"], h["camera"]) == ("cam1", "cam2")
                                          for h in pipe.state.handovers), 10, ticks)
        # the remote dashboard (a viewer key) saw the same: both cameras' tracks, the handover; a key that is not
        # a viewer's saw nothing
        assert pipe.run_until(lambda: any(h["identity"] == visitor for h in viewer.state.handovers), 10, ticks)
        assert {r.camera for r in viewer.state.tracks.values()} == {"cam1", "cam2"}
        assert viewer.state.stages["windower"].counters.get("refused_handshakes", 0) >= 1
        assert snoop.state.decisions == 0 and not snoop.state.stages
        viewer.close()
        snoop.close()
        # the unknown key: refused at the handshake, counted, nothing of it arrives
        refused, distinct = pipe.state.refused
        assert refused >= 1 and distinct == 1 and not _rows(pipe, "cam3")
        assert {r["camera"] for r in pipe.state.cameras()} == {"cam1", "cam2"}
        assert pipe.state.stages["windower"].counters.get("camera_mismatch", 0) > 0 and not _rows(pipe, "cam1", "chen")
        # both workers decided (tracks are spread by camera + track)
        assert all(pipe.state.stages[w].counters.get("windows", 0) > 0 for w in ("identify", "identify-1"))
        # a worker dies: the supervisor restarts it on its address, the windower reconnects, nothing else stops
        pids = {n: sp.proc.pid for n, sp in pipe.procs.items() if n != "identify-1"}
        pipe.kill("identify-1")
        assert pipe.run_until(lambda: pipe._running("identify-1") and pipe.state.stages["identify-1"].counters.get(
            "windows", 0) > 0, 30)
        assert {n: sp.proc.pid for n, sp in pipe.procs.items() if n != "identify-1"} == pids
    _stop(*procs)
    assert "refused this camera's key" in procs[1].stderr.read()  # the intruder camera is told, on stderr
    with open_gallery(gallery, create=False, readonly=True) as g:  # the visitor is in the shared gallery, anonymous
        people = {p.name: p for p in g.people()}
    assert people[visitor].anonymous and not people["ana"].anonymous


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "curve"])
def test_camera_drop_and_reconnect_and_serve_restart(tmp_path, keyed, spawned):
    from stream.gallery import open_gallery
    from stream.pipeline import Pipeline

    gallery = tmp_path / "g.sqlite"
    enrol_synthetic(gallery, load_encoder(FAKE, "cpu"), 4, 2, seed=0, stride=3, fps=30, walks=2, frames=150)
    port = _free_port()
    cfg = StreamConfig(heartbeat_s=0.2, track_timeout_s=1.0)
    bind = f"tcp://127.0.0.1:{port}"
    source = "synthetic:people=4,ids=0-1,frames=300,walks=0,walk_seed=5000"
    camera_keys, cam_keys = None, ()
    if keyed:  # long-lived keys: the restarted serve has the same key pair, so cameras get back in
        security.write_keypair(tmp_path / "serve", "serve")
        security.write_keypair(tmp_path / "allowed", "cam1")
        camera_keys = (security.load_keypair(tmp_path / "serve")[1], security.load_allowed(tmp_path / "allowed"))
        cam_keys = (tmp_path / "allowed" / "cam1.key_secret", tmp_path / "serve" / "serve.key")

    def _cam():
        spawned.append(_camera("cam1", source, port, *cam_keys))
        return spawned[-1]

    cam = _cam()
    try:
        with Pipeline(cfg, None, model=FAKE, gallery=gallery, frames_bind=bind, camera_keys=camera_keys,
                      visitors=False) as pipe:
            pipe.start(timeout_s=60)
            assert pipe.run_until(lambda: len(_rows(pipe, "cam1")) >= 2 and pipe.state.decisions >= 20, 40)
            pids = {n: sp.proc.pid for n, sp in pipe.procs.items()}
            # the camera drops: its tracks end (the windower forgets them), nothing else stops
            cam.kill()
            cam.wait(5)
            assert pipe.run_until(lambda: any(c["camera"] == "cam1" and c["tracks"] == 0 and c["age"] > 1.0
                                              for c in pipe.state.cameras()), 15)
            assert {n: sp.proc.pid for n, sp in pipe.procs.items()} == pids and pipe.failed is None
            # ... and comes back: new tracks (a new epoch of ids), decisions again
            cam = _cam()
            assert pipe.run_until(lambda: any(r.track >= 100000 and r.windows >= 5 for r in _rows(pipe, "cam1")), 40)
            # serve's windower dies: restarted on the same address (same keys), the camera gets back in by itself
            pipe.kill("windower")
            n = pipe.state.decisions
            assert pipe.run_until(lambda: pipe.state.stages["windower"].restarts == 1 and pipe.state.decisions > n + 20,
                                  40)
        # serve restarts on the same address: the running camera reconnects by itself, the gallery is intact
        with Pipeline(cfg, None, model=FAKE, gallery=gallery, frames_bind=bind, camera_keys=camera_keys,
                      visitors=False) as pipe:
            pipe.start(timeout_s=60)
            assert pipe.run_until(lambda: any(r.windows >= 5 for r in _rows(pipe, "cam1")), 40)
            assert cam.poll() is None
    finally:
        _stop(cam)
    with open_gallery(gallery, create=False, readonly=True) as g:
        assert sorted(p.name for p in g.people()) == ["ana", "ben"]


@pytest.mark.slow
def test_serve_command_with_a_camera_writes_events_with_camera_names(tmp_path, spawned):
    gallery, events = tmp_path / "g.sqlite", tmp_path / "ev.jsonl"
    enrol_synthetic(gallery, load_encoder(FAKE, "cpu"), 6, 1, seed=0, stride=3, fps=30, walks=2, frames=150)
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]), OMP_NUM_THREADS="1")
    serve = subprocess.Popen([sys.executable, "-m", "cagereid", "serve", "--bind", f"127.0.0.1:{port}", "--no-dashboard",
                              "--model", FAKE, "--gallery", str(gallery), "--events", str(events), "--duration", "25"],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    spawned.append(serve)
    spawned.append(_camera("door", "synthetic:people=6,ids=0,frames=300,walks=1", port))
    out, err = serve.communicate(timeout=90)
    assert serve.returncode == 0, err
    assert f"cameras connect to tcp://127.0.0.1:{port}" in err and "plain TCP, this machine only" in err
    recs = [json.loads(line) for line in events.read_text().splitlines()]
    assert recs and {r["camera"] for r in recs} == {"door"}
    for want in ("door", "cameras 1", "stopped: duration"):  # the summary: the camera's tracks and panel
        assert want in out, out
