"""`cagereid gallery list|remove`: inspect and edit the SQLite gallery of enrolled people."""
from __future__ import annotations

import argparse

HELP = "List enrolled people or remove one from the gallery"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from stream.options import DEFAULT_GALLERY

    p.add_argument("action", choices=("list", "remove"), help="list: people, embeddings, model; remove NAME")
    p.add_argument("name", nargs="?", help="person to remove")
    p.add_argument("--gallery", default=DEFAULT_GALLERY, help=f"gallery file (default: {DEFAULT_GALLERY})")
    p.add_argument("--json", action="store_true", help="list: print a JSON array, one object per person (name, "
                   "embeddings, models, enrolled, updated: ISO 8601 UTC) for scripts")


def person_json(p) -> dict:
    """One `stream.gallery.PersonInfo` as `gallery list --json` prints it."""
    import datetime as dt

    iso = lambda s: dt.datetime.fromtimestamp(s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return {"name": p.name, "embeddings": int(p.embeddings), "models": list(p.fingerprints),
            "enrolled": iso(p.created), "updated": iso(p.updated)}


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from stream.errors import StreamError
    from stream.gallery import Gallery

    import json
    import sys
    from pathlib import Path

    console = Console()
    if args.action == "remove" and not args.name:
        raise StreamError("gallery remove needs a NAME")
    if args.json and args.action != "list":
        raise StreamError("--json is for gallery list")
    if args.action == "list" and not Path(args.gallery).exists():  # nobody enrolled yet: an empty list
        print(f"note: {args.gallery}: no gallery yet (nobody enrolled); `cagereid enroll` creates it", file=sys.stderr)
        print("[]" if args.json else f"{args.gallery}: 0 people")
        return 0
    with Gallery(args.gallery, create=False, readonly=args.action == "list") as g:
        if args.action == "remove":
            n = g.remove(args.name)
            console.print(f"removed {args.name} ({n} embeddings) from {args.gallery}", markup=False, highlight=False)
            return 0
        people = g.people()
        if args.json:
            print(json.dumps([person_json(p) for p in people], indent=2))
            return 0
        t = Table(title=Text(f"{args.gallery}: {len(people)} people"))
        for col in ("name", "embeddings", "model", "enrolled", "updated"):
            t.add_column(col)
        stamp = lambda s: dt.datetime.fromtimestamp(s).strftime("%Y-%m-%d %H:%M")  # noqa: E731
        for p in people:
            t.add_row(Text(p.name), str(p.embeddings), Text(",".join(p.fingerprints)), stamp(p.created),
                      stamp(p.updated))
        console.print(t)
    return 0
