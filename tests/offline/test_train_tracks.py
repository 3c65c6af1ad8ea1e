"""`cagereid train --tracks` (issue #14): label-free adaptation to a site's own tracks files."""
import json

import numpy as np
import pytest
import torch

from cagereid.cli import main


@pytest.fixture()
def site(tmp_path, tracks_file):
    """A folder of three small tracks files (three synthetic walkers, one with its far arm hidden)."""
    d = tmp_path / "site"
    d.mkdir()
    for pid in range(3):
        tracks_file(d / f"walk{pid}.npz", pid, frames=50, hide_left_arm=(pid == 2))
    return d


def test_train_tracks_writes_a_model_that_live_loads_and_embeds_with(tmp_path, site, capsys):
    from cages import pretrained
    from offline.datasets.tracks import tracks_windows
    from stream.identify import load_encoder

    out = tmp_path / "adapted"
    assert main(["train", "--tracks", str(site), "--out", str(out), "--epochs", "1", "--quiet"]) == 0
    assert f"--model {out}" in capsys.readouterr().out
    meta = json.loads((out / "encoder.json").read_text())
    shipped = json.loads((pretrained.LIVE_PATH / "encoder.json").read_text())
    # the init model's shape, layout and embedding; the command and the footage recorded
    assert meta["encoder"] == shipped["encoder"] and meta["layout"] == shipped["layout"]
    assert meta["features"]["readout"] == shipped["features"]["readout"]
    assert meta["command"].startswith("cagereid train --tracks")
    assert meta["adapted"]["tracks"] == 3 and len(meta["adapted"]["tracks_files"]) == 3
    assert meta["adapted"]["init"] == str(pretrained.LIVE_PATH)
    # the weights moved from the shipped ones
    a = torch.load(out / "encoder.pt", weights_only=True)
    b = torch.load(pretrained.LIVE_PATH / "encoder.pt", weights_only=True)
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)

    enc = load_encoder(out, device="cpu")
    ws = tracks_windows([site], enc.layout, enc.f)
    assert ws.n == 3 * 45 and set(ws.recording.tolist()) == {0, 1, 2} and ws.start[:3].tolist() == [0, 1, 2]
    z = enc.embed(ws.windows[:8].astype(np.float32))
    assert z.shape[0] == 8 and np.isfinite(z).all()


def test_train_tracks_takes_files_and_an_init_model_and_resumes_from_it(tmp_path, site):
    first, second = tmp_path / "m1", tmp_path / "m2"
    files = [str(p) for p in sorted(site.glob("*.npz"))]
    assert main(["train", "--tracks", *files, "--out", str(first), "--epochs", "1", "--quiet"]) == 0
    assert main(["train", "--tracks", *files[:2], "--init", str(first), "--out", str(second), "--epochs", "1",
                 "--quiet"]) == 0
    meta = json.loads((second / "encoder.json").read_text())
    assert meta["adapted"]["init"] == str(first.resolve()) and meta["adapted"]["tracks"] == 2


@pytest.mark.parametrize("case, message", [
    ("empty folder", r"error: .*empty: no tracks files \(\.npz from `cagereid extract`\)"),
    ("missing file", r"error: .*nope\.npz: no such tracks file or folder"),
    ("not a tracks file", r"error: .*junk\.npz: not a readable \.npz tracks file"),
    ("too few windows", r"error: too few windows to adapt: 10 windows of f=6 frames from 2 of 2 tracks"),
    ("one track", r"error: too few windows to adapt: .* from 1 of 1 tracks"),
    ("init missing", r"error: --init .*nomodel: no such model folder"),
    ("init not a model", r"error: --init .*: not a model folder \(need encoder.pt and encoder.json\)"),
    ("with --dataset", r"error: --tracks adapts the --init model as it is; --dataset cannot be used with it"),
])
def test_train_tracks_bad_input_is_one_line(tmp_path, site, tracks_file, capsys, case, message):
    import re

    args = ["--tracks", str(site)]
    if case == "empty folder":
        (tmp_path / "empty").mkdir()
        args = ["--tracks", str(tmp_path / "empty")]
    elif case == "missing file":
        args = ["--tracks", str(tmp_path / "nope.npz")]
    elif case == "not a tracks file":
        (tmp_path / "junk.npz").write_bytes(b"not a zip")
        args = ["--tracks", str(site / "walk0.npz"), str(tmp_path / "junk.npz")]
    elif case == "too few windows":
        short = [tracks_file(tmp_path / f"s{i}.npz", i, frames=10) for i in range(2)]
        args = ["--tracks", *map(str, short)]
    elif case == "one track":
        args = ["--tracks", str(site / "walk0.npz")]
    elif case == "init missing":
        args += ["--init", str(tmp_path / "nomodel")]
    elif case == "init not a model":
        args += ["--init", str(site)]
    elif case == "with --dataset":
        args += ["--dataset", "BIWI"]
    code = main(["train", *args, "--out", str(tmp_path / "out"), "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "out" / "encoder.pt").exists()
