"""`cagereid bench train|lift`: a status line per long step on stderr, with how many are left and the time left
(`cagereid.progress.Steps`), nothing with --quiet. Checks the lines only; no timing is asserted."""
import re


def _run(argv, capsys):
    from cagereid.cli import main

    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0
    return out, err


def test_bench_lift_says_each_step_and_time_left(tmp_path, capsys):
    argv = ["bench", "lift", "--library", str(tmp_path / "none.npz"), "--mlp", str(tmp_path / "none.pt"),
            "--width", "16", "--poses", "50", "--repeats", "1", "--k", "1", "2", "--backends", "kdtree",
            "--device", "cpu"]
    out, err = _run(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.startswith("[")]
    assert [ln.split("]")[0] + "]" for ln in lines] == ["[1/3]", "[2/3]", "[3/3]"]
    assert "matching lifter k=1 (kdtree)" in lines[0] and re.search(r"about \d+ s left", lines[0])
    assert "MLP lifter" in lines[2] and "left" not in lines[2]  # nothing left after the last step
    assert "lifting throughput" in out  # the table stays on stdout
    _, err = _run(argv + ["--quiet"], capsys)
    assert not [ln for ln in err.splitlines() if ln.startswith("[")]


def test_bench_train_says_each_run_and_time_left(capsys):
    argv = ["bench", "train", "--batch-size", "4", "--steps", "1", "--runs", "2", "--latency-batches", "1",
            "--repeats", "1", "--device", "cpu", "--length", "4"]
    out, err = _run(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.startswith("[")]
    assert len(lines) == 3
    assert lines[0].startswith("[1/3] training run:") and "windows/s" in lines[0] and "left" in lines[0]
    assert lines[2].startswith("[3/3] inference latency, batch of 1")
    assert "training throughput" in out
