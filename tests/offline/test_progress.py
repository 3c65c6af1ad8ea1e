"""Long jobs say how far they are and about how long is left, on stderr; results stay on stdout; --quiet."""
import pytest

from cagereid import cli
from cagereid.progress import Steps
from tests.offline.test_evaluate import synth


def test_steps_estimate_the_time_left_from_the_timed_steps():
    said, now = [], [0.0]
    st = Steps(4, said.append)
    st._clock = lambda: now[0]
    st.start()
    now[0] = 120.0
    st.done("a")  # one trained step of 2 min: 3 left ~ 6 min
    st.start()
    st.done("b", timed=False)  # a reused run costs nothing and does not change the pace
    st.start()
    now[0] = 150.0
    st.done("c")  # (120 + 30) / 2 = 75 s per step, 1 left
    st.start()
    st.done("d", timed=False)
    assert said == ["[1/4] a, about 6 min left", "[2/4] b, about 4 min left", "[3/4] c, about 75 s left", "[4/4] d"]


@pytest.mark.parametrize("quiet", [False, True])
def test_evaluate_training_reports_progress_on_stderr_only(tmp_path, capsys, quiet):
    from offline.datasets.cage_layout import write_cage_dataset

    write_cage_dataset(tmp_path / "Datasets", "KGBD", 4,
                       {s: synth("KGBD", s, 20, seed=i) for i, s in enumerate(("train", "test"))})
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("hidden: 8\nepochs: 1\nrn_epochs: 2\nbatch_size: 16\n")
    rc = cli.main(["evaluate", "--dataset", "KGBD", "--data-root", str(tmp_path / "Datasets"), "--length", "4",
                   "--train", "--config", str(cfg), "--device", "cpu", "--methods", "cage",
                   "--out", str(tmp_path / "out"), *(["--quiet"] if quiet else [])])
    assert rc == 0
    out, err = capsys.readouterr()
    assert "| CAGEs |" in out and "[1/1]" not in out and "encoder" not in out.split("|")[0]
    if quiet:
        assert err == ""
    else:
        assert "[1/1] CAGEs seed 0: trained" in err and "2/2" in err  # the RN training bar (epochs done/total)
