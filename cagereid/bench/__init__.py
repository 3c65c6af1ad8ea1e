"""Benchmarks (speed and memory tables); never run by the tests.

Every bench prints its tables with `show`; under ``cagereid bench WHAT --json`` (`collecting`) the tables are
also collected as ``{"title", "columns", "rows": [{column: value}]}`` (numbers as numbers), everything else
goes to stderr, and stdout gets one JSON document: ``{"bench": WHAT, "tables": [...]}``.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

_collected: list[dict] | None = None
_NUMBER = re.compile(r"^[+-]?\d[\d,]*(\.\d+)?([eE][+-]?\d+)?$")


def _value(text: str):
    text = text.strip()
    if _NUMBER.match(text):
        v = float(text.replace(",", ""))
        return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v
    return text


def table_json(table) -> dict:
    """A rich `Table` as plain data: title, column headers and one dict per row (cells parsed as numbers where
    they are plain numbers, e.g. ``1,234`` or ``12.5``; anything else, e.g. ``2.1x`` or ``12 ms``, stays text)."""
    cols = [str(c.header) for c in table.columns]
    cells = [[str(x) for x in c._cells] for c in table.columns]
    n = max((len(c) for c in cells), default=0)
    rows = [{cols[j]: _value(cells[j][i]) if i < len(cells[j]) else None for j in range(len(cols))} for i in range(n)]
    return {"title": str(table.title or ""), "columns": cols, "rows": rows}


def show(console, table) -> None:
    """Print ``table`` on ``console`` and, under `collecting`, keep it for the JSON output."""
    if _collected is not None:
        _collected.append(table_json(table))
    console.print(table)


@contextmanager
def collecting() -> Iterator[list[dict]]:
    """Collect every table `show` prints inside the block (the list is filled as they come)."""
    global _collected
    prev, _collected = _collected, []
    try:
        yield _collected
    finally:
        _collected = prev
