"""What scripts and users read: `gallery list --json`, enrolment progress on stderr (results on stdout)."""
import json

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
