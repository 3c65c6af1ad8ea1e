"""`cagereid live/gallery/enroll` from the command line: the dashboard in a pseudo-terminal, one-line errors."""
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _env():
    env = dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{REPO}", OMP_NUM_THREADS="1", TERM="xterm-256color",
               COLUMNS="110", LINES="40")
    return env


@pytest.mark.slow
def test_live_dashboard_renders_in_a_pseudo_terminal(tmp_path):
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "cagereid", "live", "--model", "stream_fakes:make_encoder",
                             "--source", "synthetic:people=2,frames=150,walks=1",
                             "--duration", "8"], stdin=slave, stdout=slave, stderr=slave, env=_env(), cwd=tmp_path)
    os.close(slave)
    out = b""
    end = time.time() + 90
    while time.time() < end:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(10)
    os.close(master)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text[-2000:]
    assert "\x1b[?1049h" in text  # full-screen (alternate screen) mode, as in tmux
    assert "pipeline health" in text and "identify" in text
    assert "unknown" in text  # both walkers are tracked; nobody is enrolled
    assert "stopped: " in text


def _main(capsys, *args):
    from cagereid.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_one_line_errors_for_bad_input(tmp_path, capsys):
    code, _, err = _main(capsys, "gallery", "remove", "x", "--gallery", str(tmp_path / "missing.sqlite"))
    assert code == 2 and err.startswith("error: ") and "missing.sqlite" in err and "Traceback" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("strde: 3\n")
    code, _, err = _main(capsys, "live", "--config", str(bad), "--duration", "1")
    assert code == 2 and "strde" in err and "bad.yaml" in err
    code, _, err = _main(capsys, "enroll", "--name", "x", "--source", "synthetic:peeple=3", "--model",
                         "stream_fakes:make_encoder", "--gallery", str(tmp_path / "g.sqlite"))
    assert code == 2 and "peeple" in err
    code, _, err = _main(capsys, "live", "--source", str(tmp_path / "nope.avi"), "--duration", "1")
    assert code == 2 and "nope.avi" in err


def test_enroll_then_list_then_remove(tmp_path, capsys):
    g = str(tmp_path / "g.sqlite")
    for name, i in (("ana", 0), ("ben", 1)):
        code, out, err = _main(capsys, "enroll", "--name", name, "--source",
                               f"synthetic:people=4,ids={i},frames=120,walks=1", "--model",
                               "stream_fakes:make_encoder", "--gallery", g)
        assert code == 0, err
        assert f"enrolled {name}: 39 embeddings" in out
    code, out, _ = _main(capsys, "gallery", "list", "--gallery", g)
    assert code == 0 and "ana" in out and "ben" in out and "fake0000test" in out
    code, out, _ = _main(capsys, "gallery", "remove", "ben", "--gallery", g)
    assert code == 0 and "removed ben (39 embeddings)" in out
    assert "ben" not in _main(capsys, "gallery", "list", "--gallery", g)[1]


def test_enroll_from_synthetic_ends_and_bad_names_models_and_sources_are_one_line(tmp_path, capsys):
    g = str(tmp_path / "g.sqlite")
    # the form --help shows (no walks=): one walk, then done (it used to run forever)
    code, out, err = _main(capsys, "enroll", "--name", "ana", "--source", "synthetic:ids=0", "--model",
                           "stream_fakes:make_encoder", "--gallery", g)
    assert code == 0 and "enrolled ana: 99 embeddings" in out, err
    code, _, err = _main(capsys, "enroll", "--name", "x[/b]", "--source", "synthetic:ids=0", "--model",
                         "stream_fakes:make_encoder", "--gallery", g)
    assert code == 2 and "invalid person name" in err
    code, _, err = _main(capsys, "enroll", "--name", "x", "--source", "synthetic:ids=0,walks=0", "--model",
                         "stream_fakes:make_encoder", "--gallery", g)
    assert code == 2 and "never ends" in err
    model = tmp_path / "model"
    model.mkdir()
    (model / "encoder.pt").write_bytes(b"\x80garbage" * 100)
    code, _, err = _main(capsys, "enroll", "--name", "ben", "--source", "synthetic:ids=1", "--model", str(model),
                         "--gallery", g)
    assert code == 2 and str(model) in err and "cannot load" in err and len(err.strip().splitlines()) == 1
    text = tmp_path / "walk.mp4"
    text.write_text("not a video")
    code, _, err = _main(capsys, "live", "--source", str(text), "--duration", "1")
    assert code == 2 and "walk.mp4" in err and "cannot open" in err
    empty = tmp_path / "empty.npz"
    import numpy as np

    np.savez(empty)
    code, _, err = _main(capsys, "live", "--source", str(empty), "--duration", "1")
    assert code == 2 and "empty.npz" in err


def test_markup_in_names_is_printed_as_text(tmp_path, capsys):
    """A name holding rich markup ("[/") used to crash `gallery list`, `gallery remove` (after deleting) and the
    live summary. Such names can no longer be enrolled, but an older gallery may hold them."""
    import sqlite3

    import numpy as np

    from stream.gallery import Gallery

    g = tmp_path / "g.sqlite"
    with Gallery(g) as gal:
        gal.enroll("ana", np.ones((2, 4), np.float32), "fp1")
    with sqlite3.connect(g) as db:
        db.execute("UPDATE people SET name = '[/]x[bold' WHERE name = 'ana'")
    code, out, err = _main(capsys, "gallery", "list", "--gallery", str(g))
    assert code == 0 and "[/]x[bold" in out, err
    code, out, err = _main(capsys, "gallery", "remove", "[/]x[bold", "--gallery", str(g))
    assert code == 0 and "removed [/]x[bold (2 embeddings)" in out, err

    from rich.console import Console

    from stream.dashboard import print_summary
    from stream.dashboard import DashboardState
    from stream.messages import DecisionMsg

    state = DashboardState()
    state.on_decision(DecisionMsg(track=1, identity="[/red]", confidence=1.0, windows=5, score=1.0, best="[/b]",
                                  t_pub=1.0, t_decided=1.01, label="[bold"))
    state.note("identify: gallery [/] broken")
    print_summary(state, Console(file=open(os.devnull, "w"), width=100))
