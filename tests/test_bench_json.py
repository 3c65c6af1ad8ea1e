"""`cagereid bench WHAT --json`: the tables as one JSON document on stdout (scripts), the rest on stderr.
Checks the format only; no timing is asserted."""
import json

from rich.table import Table
from rich.text import Text

from cagereid.bench import table_json


def test_table_json_parses_plain_numbers_and_keeps_text():
    t = Table(title="speed")
    for c in ("what", "windows/s", "ratio", "ms"):
        t.add_column(c)
    t.add_row(Text("model"), "12,345", "1.25x", "0.50")
    t.add_row("reference", "9,876", "–", "3e-2")
    assert table_json(t) == {"title": "speed", "columns": ["what", "windows/s", "ratio", "ms"], "rows": [
        {"what": "model", "windows/s": 12345, "ratio": "1.25x", "ms": 0.5},
        {"what": "reference", "windows/s": 9876, "ratio": "–", "ms": 0.03}]}


def test_bench_json_on_stdout_and_tables_on_stderr(tmp_path, capsys):
    from cagereid.cli import main

    rc = main(["bench", "lift", "--json", "--library", str(tmp_path / "none.npz"), "--mlp", str(tmp_path / "none.pt"),
               "--width", "16", "--poses", "50", "--repeats", "1", "--k", "1", "--backends", "kdtree",
               "--device", "cpu"])
    out, err = capsys.readouterr()
    assert rc == 0
    doc = json.loads(out)  # stdout is nothing but the JSON document
    assert doc["bench"] == "lift" and len(doc["tables"]) == 1
    rows = doc["tables"][0]["rows"]
    assert len(rows) >= 2 and all(isinstance(r[c], (int, float)) for r in rows for c in doc["tables"][0]["columns"][2:])
    assert "lifting throughput" in err  # the human-readable table went to stderr
