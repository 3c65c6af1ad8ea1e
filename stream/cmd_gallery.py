"""`cagereid gallery list|remove`: inspect and edit the SQLite gallery of enrolled people."""
from __future__ import annotations

import argparse

HELP = "List enrolled people or remove one from the gallery"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from stream.options import DEFAULT_GALLERY

    p.add_argument("action", choices=("list", "remove"), help="list: people, embeddings, model; remove NAME")
    p.add_argument("name", nargs="?", help="person to remove")
    p.add_argument("--gallery", default=DEFAULT_GALLERY, help=f"gallery file (default: {DEFAULT_GALLERY})")


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from stream.errors import StreamError
    from stream.gallery import Gallery

    console = Console()
    if args.action == "remove" and not args.name:
        raise StreamError("gallery remove needs a NAME")
    with Gallery(args.gallery, create=False, readonly=args.action == "list") as g:
        if args.action == "remove":
            n = g.remove(args.name)
            console.print(f"removed {args.name} ({n} embeddings) from {args.gallery}", markup=False, highlight=False)
            return 0
        people = g.people()
        t = Table(title=Text(f"{args.gallery}: {len(people)} people"))
        for col in ("name", "embeddings", "model", "enrolled", "updated"):
            t.add_column(col)
        stamp = lambda s: dt.datetime.fromtimestamp(s).strftime("%Y-%m-%d %H:%M")  # noqa: E731
        for p in people:
            t.add_row(Text(p.name), str(p.embeddings), Text(",".join(p.fingerprints)), stamp(p.created),
                      stamp(p.updated))
        console.print(t)
    return 0
