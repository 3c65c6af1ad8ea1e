"""`cagereid gallery list|remove|copy|reembed`: inspect, edit, move and convert the gallery of enrolled people.

The gallery is a SQLite file (default) or a ``postgresql://`` URL (PostgreSQL with pgvector, shared by several
machines); every action takes either.

* ``list`` and ``remove NAME``;
* ``copy SRC DST``: every person, embedding and stored window from one gallery to another (SQLite <-> PostgreSQL,
  either way). DST must be new or empty unless ``--merge`` (then it must not hold the same names). A new SQLite
  DST is written to a temporary file and renamed when complete; a database DST takes it in one transaction.
* ``reembed --model DIR``: re-encode every stored enrolment window with another model (after the default model
  changed, or to move to a site-trained one) and store the new embeddings under its fingerprint in one
  transaction. People enrolled before windows were stored cannot be converted: they are named, to re-enrol.
"""
from __future__ import annotations

import argparse

HELP = "List, remove, copy (SQLite <-> PostgreSQL) or re-embed (another model) the gallery of enrolled people"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cagereid.flags import add_quiet
    from stream.options import DEFAULT_GALLERY

    p.add_argument("action", choices=("list", "remove", "copy", "reembed"),
                   help="list: people, embeddings, model; remove NAME; copy SRC DST; reembed --model DIR")
    p.add_argument("args", nargs="*", metavar="ARG", help="remove: the person's name; copy: SRC DST (files or "
                   "postgresql:// URLs)")
    p.add_argument("--gallery", default=DEFAULT_GALLERY, help=f"gallery file or postgresql://user@host/db URL "
                   f"(default: {DEFAULT_GALLERY}); a non-local host needs ?sslmode=verify-full")
    p.add_argument("--json", action="store_true", help="list: print a JSON array, one object per person (name, "
                   "embeddings, models, enrolled, updated: ISO 8601 UTC; anonymous, windows) for scripts")
    p.add_argument("--merge", action="store_true", help="copy: add to a DST that already holds people")
    p.add_argument("--model", default=None, help="reembed: the encoder folder (from `cagereid train --out`) or "
                   "module:factory to convert the gallery to")
    p.add_argument("--device", default="auto", help="reembed: auto | cpu | cuda (default: auto)")
    add_quiet(p, "no progress on stderr (copy, reembed)")


def person_json(p) -> dict:
    """One `stream.gallery.PersonInfo` as `gallery list --json` prints it."""
    import datetime as dt

    iso = lambda s: dt.datetime.fromtimestamp(s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"name": p.name, "embeddings": int(p.embeddings), "models": list(p.fingerprints),
            "enrolled": iso(p.created), "updated": iso(p.updated), "anonymous": bool(p.anonymous),
            "windows": int(p.windows)}


def _nargs(args, n: int, usage: str) -> list[str]:
    from stream.errors import StreamError

    if len(args.args) != n:
        raise StreamError(f"gallery {args.action} needs {usage}" + (f", not {len(args.args)} argument(s)"
                                                                    if args.args else ""))
    return args.args


def run(args: argparse.Namespace) -> int:
    from stream.errors import StreamError

    if args.json and args.action != "list":
        raise StreamError("--json is for gallery list")
    if args.merge and args.action != "copy":
        raise StreamError("--merge is for gallery copy")
    if args.model is not None and args.action != "reembed":
        raise StreamError("--model is for gallery reembed")
    if args.action == "list":
        _nargs(args, 0, "no argument (the gallery is --gallery)")
        return _list(args)
    if args.action == "remove":
        (name,) = _nargs(args, 1, "the NAME of the person to remove")
        from rich.console import Console

        from stream.gallery import open_gallery, redact

        with open_gallery(args.gallery, create=False) as g:
            n = g.remove(name)
        Console().print(f"removed {name} ({n} embeddings) from {redact(args.gallery)}", markup=False,
                        highlight=False)
        return 0
    if args.action == "copy":
        src, dst = _nargs(args, 2, "SRC DST (files or postgresql:// URLs)")
        return copy(src, dst, merge=args.merge, quiet=args.quiet)
    _nargs(args, 0, "no argument (--gallery and --model)")
    return reembed(args.gallery, args.model, args.device, quiet=args.quiet)


def _list(args) -> int:
    import datetime as dt
    import json
    import sys

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from stream.gallery import gallery_exists, open_gallery, redact

    shown = redact(args.gallery)
    if not gallery_exists(args.gallery):  # nobody enrolled yet: an empty list
        print(f"note: {shown}: no gallery yet (nobody enrolled); `cagereid enroll` creates it", file=sys.stderr)
        print("[]" if args.json else f"{shown}: 0 people")
        return 0
    with open_gallery(args.gallery, create=False, readonly=True) as g:
        people = g.people()
    if args.json:
        print(json.dumps([person_json(p) for p in people], indent=2))
        return 0
    t = Table(title=Text(f"{shown}: {len(people)} people"))
    for col in ("name", "embeddings", "model", "enrolled", "updated"):
        t.add_column(col)
    stamp = lambda s: dt.datetime.fromtimestamp(s).strftime("%Y-%m-%d %H:%M")
    for p in people:
        name = Text(p.name + (" (visitor)" if p.anonymous else ""))
        t.add_row(name, f"{p.embeddings}" + ("" if p.windows == p.embeddings else f" ({p.windows} with windows)"),
                  Text(",".join(p.fingerprints)), stamp(p.created), stamp(p.updated))
    Console().print(t)
    return 0


def copy(src: str, dst: str, merge: bool = False, quiet: bool = False) -> int:
    """`gallery copy`: see the module docstring. Prints one summary line."""
    from pathlib import Path

    from cagereid.progress import stderr_say
    from stream.errors import GalleryError
    from stream.gallery import is_url, open_gallery, redact

    say = stderr_say(quiet)
    same = (src == dst) if is_url(src) or is_url(dst) else Path(src).resolve() == Path(dst).resolve()
    if same:
        raise GalleryError(f"{redact(src)}: copy to itself")
    every = 5000

    def progress(n: int) -> None:
        if n % every == 0:
            say(f"copy: {n} people ...")

    with open_gallery(src, create=False, readonly=True) as s:
        total = s.count_people()
        say(f"copy: {total} people from {redact(src)} to {redact(dst)}")
        records = s.export()
        try:
            n = _import(dst, records, merge, progress)
        finally:
            records.close()  # a failed import leaves the export half-read: end its read transaction now
    print(f"copied {n} people from {redact(src)} to {redact(dst)}")
    return 0


def _import(dst: str, records, merge: bool, progress) -> int:
    """Into an existing gallery or a database: one transaction. Into a new file: a temporary file in the same
    folder, renamed when complete (never half a gallery under DST's name)."""
    import os
    import tempfile
    from pathlib import Path

    from stream.gallery import is_url, open_gallery

    if is_url(dst) or Path(dst).exists():
        with open_gallery(dst) as d:
            return d.import_people(records, merge=merge, progress=progress)
    target = Path(dst)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)  # SQLiteGallery creates only missing files
    try:
        with open_gallery(tmp) as d:
            n = d.import_people(records, progress=progress)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return n


def reembed(gallery: str, model: str | None, device: str = "auto", quiet: bool = False) -> int:
    """`gallery reembed`: see the module docstring."""
    import sys

    from cagereid.progress import stderr_say
    from pose.layouts import get_layout
    from stream.errors import StreamError
    from stream.gallery import open_gallery, redact
    from stream.identify import load_encoder

    if not model:
        raise StreamError("gallery reembed needs --model DIR (the model to convert the gallery to)")
    say = stderr_say(quiet)
    encoder = load_encoder(model, device)
    J = get_layout(encoder.layout).J
    last = [0.0]

    def progress(done: int, total: int) -> None:
        import time

        if time.monotonic() - last[0] > 2 or done == total:
            last[0] = time.monotonic()
            say(f"reembed: {done}/{total} windows encoded")

    with open_gallery(gallery, create=False) as g:
        n, stale = g.reembed(encoder.embed, encoder.fingerprint, encoder.f, J, progress=progress)
    if stale:
        shown = ", ".join(stale[:10]) + (f" and {len(stale) - 10} more" if len(stale) > 10 else "")
        print(f"warning: {len(stale)} people have no stored windows (enrolled before windows were kept) and keep "
              f"the old model's embeddings, which {encoder.fingerprint} does not match: {shown}; re-enrol them "
              f"with `cagereid enroll --model {model} --gallery ...`", file=sys.stderr)
    print(f"re-embedded {n} windows in {redact(gallery)} with model {encoder.fingerprint} ({encoder.source})")
    return 0
