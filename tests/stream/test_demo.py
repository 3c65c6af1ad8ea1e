"""`cagereid demo` end to end with the shipped encoder (cages/pretrained): enrol, run live, summarise."""
import re
from pathlib import Path

import pytest

MODEL = Path(__file__).resolve().parents[2] / "cages" / "pretrained" / "encoder.pt"


@pytest.mark.slow
def test_demo_identifies_enrolled_walkers_and_rejects_strangers(capsys):
    if not MODEL.is_file():
        pytest.fail(f"the shipped demo model is missing: {MODEL} (see cages/pretrained/README.md)")
    from cagereid.cli import main

    code = main(["demo", "--no-dashboard"])  # exactly the README's first command (5 enrolled, 3 strangers)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "final decision per track" in out
    m = re.search(r"correct tracks (\d+)/(\d+)", out)
    assert m, out
    correct, tracks = int(m.group(1)), int(m.group(2))
    assert tracks == 8
    assert correct >= 7, out  # synthetic walkers, 12 s each: at most one track may be wrong
    assert re.search(r"latency frame→decision p50 [\d.]+ ms, p95 [\d.]+ ms", out)
