"""What scripts and users read: `gallery list --json`, enrolment progress on stderr (results on stdout)."""
import json
from pathlib import Path

import pytest


def _main(capsys, *args):
    from cagereid.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_gallery_list_json(tmp_path, capsys):
    g = str(tmp_path / "g.sqlite")
    code, out, err = _main(capsys, "gallery", "list", "--json", "--gallery", g)
    assert code == 0 and json.loads(out) == [] and "no gallery yet" in err  # missing: empty list + a note
    code, out, err = _main(capsys, "gallery", "list", "--gallery", g)
    assert code == 0 and "0 people" in out and "note:" in err
    for name, i in (("ana", 0), ("Zoë O'Neil", 1)):
        assert _main(capsys, "enroll", "--name", name, "--source", f"synthetic:people=4,ids={i},frames=120,walks=1",
                     "--model", "stream_fakes:make_encoder", "--gallery", g)[0] == 0
    code, out, err = _main(capsys, "gallery", "list", "--json", "--gallery", g)
    people = json.loads(out)
    assert code == 0 and err == ""
    assert sorted(p["name"] for p in people) == ["Zoë O'Neil", "ana"]
    assert all(p["embeddings"] == 39 and p["models"] == ["fake0000test"] and p["enrolled"].endswith("Z")
               for p in people)
    code, _, err = _main(capsys, "gallery", "remove", "ana", "--json", "--gallery", g)
    assert code == 2 and err.startswith("error: ") and "--json" in err


@pytest.mark.parametrize("quiet", [False, True])
def test_enroll_from_a_video_shows_progress_on_stderr(tmp_path, capsys, quiet):
    import cv2
    import numpy as np

    video = tmp_path / "empty_room.avi"  # nobody walks: the enrolment fails after reading every frame
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    for _ in range(20):
        w.write(np.full((120, 160, 3), 90, np.uint8))
    w.release()
    code, out, err = _main(capsys, "enroll", "--name", "a", "--source", str(video), "--model",
                           "stream_fakes:make_encoder", "--gallery", str(tmp_path / "g.sqlite"),
                           *(["--quiet"] if quiet else []))
    assert code == 2 and out == "" and "no complete" in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ")
    if quiet:
        assert len(lines) == 1
    else:
        assert "enrol reading poses" in err and "20/20" in err


def test_event_log_records_every_decision_and_each_identity_change(tmp_path):
    from stream.events import EventLog
    from stream.messages import DecisionMsg

    def msg(track, identity, t):
        return DecisionMsg(track=track, identity=identity, confidence=0.75, windows=int(t), score=-0.5,
                           best="ana", t_pub=t - 0.1, t_decided=t, label="")

    path = tmp_path / "ev.jsonl"
    with EventLog(path) as log:
        for m in (msg(1, "...", 1.0), msg(1, "ana", 2.0), msg(1, "ana", 3.0), msg(2, "unknown", 3.5),
                  msg(1, "unknown", 4.0)):
            log(m)
        assert len(path.read_text().splitlines()) == log.records  # flushed line by line, readable while live
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    changes = [(r["track"], r["previous"], r["identity"]) for r in recs if r["type"] == "identity"]
    assert changes == [(1, None, "..."), (1, "...", "ana"), (2, None, "unknown"), (1, "ana", "unknown")]
    decisions = [r for r in recs if r["type"] == "decision"]
    assert [r["time"] for r in decisions] == [1.0, 2.0, 3.0, 3.5, 4.0]
    assert all(set(r) >= {"schema", "type", "time", "camera", "track", "identity", "confidence", "score", "best",
                          "windows", "t_frame", "label"} and r["schema"] == 1 for r in recs)


def test_live_events_file(tmp_path, capsys):
    g, ev = str(tmp_path / "g.sqlite"), tmp_path / "out" / "events.jsonl"
    assert _main(capsys, "enroll", "--name", "ana", "--source", "synthetic:people=4,ids=0,frames=150,walks=2",
                 "--model", "stream_fakes:make_encoder", "--gallery", g)[0] == 0
    code, out, err = _main(capsys, "live", "--no-dashboard", "--source", "synthetic:people=4,ids=0-1,frames=150,walks=1",
                           "--model", "stream_fakes:make_encoder", "--gallery", g, "--events", str(ev),
                           "--duration", "60")
    assert code == 0, err
    recs = [json.loads(line) for line in ev.read_text().splitlines()]
    decisions = [r for r in recs if r["type"] == "decision"]
    assert decisions and f"decisions {len(decisions)}" in out  # every decision the dashboard counted
    first = {}
    for r in recs:
        first.setdefault(r["track"], r)
    assert all(r["type"] == "identity" and r["previous"] is None for r in first.values())  # a new track's first record
    assert len(first) == 2 and all(isinstance(r["score"], float) for r in decisions)
    code, _, err = _main(capsys, "live", "--no-dashboard", "--events", str(tmp_path), "--duration", "1")
    assert code == 2 and err.startswith("error: ") and "event log" in err


def test_names_message_round_trip_and_validation():
    from stream.messages import MessageError, NamesMsg, decode

    msg = decode(NamesMsg({3: ("ana", 0.9), 100004: ("unknown", 0.5)}).to_frames())
    assert isinstance(msg, NamesMsg) and msg.names == {3: ("ana", 0.9), 100004: ("unknown", 0.5)}
    from stream.messages import _pack

    for head in ({"tracks": [1], "identities": ["a", "b"], "confidence": [0.5]},  # lengths differ
                 {"tracks": [-1], "identities": ["a"], "confidence": [0.5]},
                 {"tracks": [1], "identities": ["a"], "confidence": [1.5]},
                 {"tracks": [1], "identities": ["x" * 300], "confidence": [0.5]}):
        with pytest.raises(MessageError):
            decode(_pack(NamesMsg.TOPIC, head))


def test_overlay_sink_drops_frames_instead_of_waiting(tmp_path):
    import threading

    import numpy as np

    from stream.overlay import OverlaySink

    sink = OverlaySink(str(tmp_path / "o.avi"), capacity=2)
    gate = threading.Event()
    draw = sink._draw
    sink._draw = lambda *a: (gate.wait(10), draw(*a))  # a drawing thread that has fallen behind
    img = np.zeros((64, 80, 3), np.uint8)
    taken = [sink.offer(img, [], i) for i in range(10)]  # returns at once every time
    assert sum(taken) <= 3 and sink.dropped == 10 - sum(taken) > 0
    gate.set()
    path = sink.close()
    assert path is not None and path.is_file() and sink.drawn == sum(taken) and sink.error is None


def _no_display_and_a_video(tmp_path, monkeypatch):
    """No display in the environment, and a 3-frame black video: what --show / --overlay refusals need."""
    import cv2
    import numpy as np

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    video = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for _ in range(3):
        w.write(np.zeros((48, 64, 3), np.uint8))
    w.release()
    return video


def test_live_overlay_needs_a_video_source_and_show_a_display(tmp_path, capsys, monkeypatch):
    code, _, err = _main(capsys, "live", "--no-dashboard", "--source", "synthetic", "--overlay",
                         str(tmp_path / "o.mp4"), "--duration", "1")
    assert code == 2 and err.startswith("error: ") and "video" in err and len(err.strip().splitlines()) == 1
    video = _no_display_and_a_video(tmp_path, monkeypatch)
    code, _, err = _main(capsys, "live", "--no-dashboard", "--source", str(video), "--show", "--duration", "1")
    assert code == 2 and "--show needs a display" in err and len(err.strip().splitlines()) == 1
    code, _, err = _main(capsys, "live", "--no-dashboard", "--source", str(video), "--overlay",
                         str(tmp_path / "o.gif"), "--duration", "1")
    assert code == 2 and "must end in" in err


VIDEO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "video" / "openpose_walk.avi"


@pytest.mark.slow
@pytest.mark.skipif(not VIDEO.is_file(), reason=f"real video not found at {VIDEO}")
def test_live_overlay_draws_every_frame_with_the_decisions(tmp_path, capsys):
    import cv2
    import numpy as np

    from pose.overlay import LEFT_BGR, RIGHT_BGR

    clip = tmp_path / "clip.avi"  # the first 45 frames of a real street video, at half size
    cap = cv2.VideoCapture(str(VIDEO))
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 360))
    for _ in range(45):
        ok, img = cap.read()
        assert ok
        w.write(cv2.resize(img, (640, 360)))
    w.release()
    cap.release()
    out, ev = tmp_path / "overlay.mp4", tmp_path / "ev.jsonl"
    code, _, err = _main(capsys, "live", "--no-dashboard", "--source", str(clip), "--overlay", str(out),
                         "--events", str(ev), "--gallery", "", "--duration", "120")
    assert code == 0, err
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    assert len(frames) == 45  # every frame, people or not (nothing dropped at this pace)
    last = frames[-1]
    assert (np.abs(last.astype(int) - LEFT_BGR).max(-1) < 40).sum() > 50  # a skeleton's left side
    assert (np.abs(last.astype(int) - RIGHT_BGR).max(-1) < 40).sum() > 50
    recs = [json.loads(line) for line in ev.read_text().splitlines()]
    assert any(r["identity"] == "unknown" for r in recs)  # nobody enrolled: the tags read "unknown"


def test_enroll_preview_tags_the_person_being_enrolled():
    import numpy as np

    from stream.enrol import preview
    from stream.producer import FrameGroup, Observation

    def group(i, tracks):
        g = FrameGroup([Observation(t, i, i / 25, np.zeros((20, 3), np.float32), np.ones(20, bool)) for t in tracks])
        g.image, g.frame_index, g.shown = np.zeros((8, 8, 3), np.uint8), i, []
        return g

    offers = []
    sink = type("Sink", (), {"offer": lambda self, img, shown, i, names: offers.append((i, names))})()
    groups = [group(0, [1]), group(1, [1, 2]), group(2, [2]), group(3, [2]), group(4, [])]
    obs = list(preview(groups, sink, "ana"))
    assert [o.track for o in obs] == [1, 1, 2, 2, 2]  # every observation passes through unchanged
    # the track seen most so far, as enroll picks the longest (a tie keeps the first): 1, 1, 1 (2:2), 2, 2
    assert [list(n) for _, n in offers] == [[1], [1], [1], [2], [2]]
    assert offers[0][1] == {1: ("ana (enrolling)", None)}
    offers.clear()
    list(preview(groups, sink, "ana", track=1))
    assert all(n == {1: ("ana (enrolling)", None)} for _, n in offers)


def test_enroll_show_without_a_display_is_one_line(tmp_path, capsys, monkeypatch):
    video = _no_display_and_a_video(tmp_path, monkeypatch)
    code, _, err = _main(capsys, "enroll", "--name", "a", "--source", str(video), "--show",
                         "--gallery", str(tmp_path / "g.sqlite"))
    assert code == 2 and "--show needs a display" in err and len(err.strip().splitlines()) == 1
    code, _, err = _main(capsys, "enroll", "--name", "a", "--source", "synthetic:ids=0", "--show",
                         "--gallery", str(tmp_path / "g.sqlite"))
    assert code == 2 and "video" in err
