"""The gallery: enrolled people (and anonymous visitors) with their gait embeddings.

Two backends behind one interface (`stream.gallery.base.BaseGallery`), picked by `open_gallery(spec)`:

* a file path: one SQLite file (`stream.gallery.sqlite`), the embedded default;
* a ``postgresql://`` URL: a PostgreSQL database with pgvector (`stream.gallery.postgres`) that several machines
  and processes share, with nearest-person search in the database (HNSW index).

``Gallery`` is the SQLite class (its old name). A ``postgresql://`` URL to a host other than this machine must
say ``sslmode=verify-full`` (biometric data does not cross a network in clear or to an unverified server).
"""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from stream.errors import GalleryError
from stream.gallery.base import (
    MAX_NAME,
    REEMBED_HINT,
    VISITOR_PREFIX,
    BaseGallery,
    GalleryData,
    PersonInfo,
    PersonRecord,
    SearchResult,
    check_name,
)
from stream.gallery.sqlite import SCHEMA, Gallery, SQLiteGallery

__all__ = [
    "MAX_NAME",
    "REEMBED_HINT",
    "SCHEMA",
    "VISITOR_PREFIX",
    "BaseGallery",
    "Gallery",
    "GalleryData",
    "PersonInfo",
    "PersonRecord",
    "SQLiteGallery",
    "SearchResult",
    "check_name",
    "check_url",
    "gallery_exists",
    "is_url",
    "open_gallery",
    "redact",
]

_SCHEMES = ("postgresql://", "postgres://")


def is_url(spec) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL, False for a file path."""
    return isinstance(spec, str) and spec.lower().startswith(_SCHEMES)


def redact(spec) -> str:
    """The spec as messages may show it: a URL without its password."""
    spec = str(spec)
    if not is_url(spec):
        return spec
    u = urlsplit(spec)
    if u.password is None:
        return spec
    netloc = u.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit((u.scheme, f"{user}:***@{netloc[1]}", u.path, u.query, u.fragment))


def _local(host: str) -> bool:
    if not host or host.startswith(("/", "@")) or host.lower() == "localhost":
        return True  # a Unix socket (a directory, or Linux's abstract namespace) or the loopback name
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """Refuse a URL to a non-loopback host unless it says ``sslmode=verify-full`` (TLS with the server's
    certificate and host name checked); returns the URL. Hosts and sslmode given by PGHOST / PGSSLMODE count."""
    try:
        u = urlsplit(url)
        query = parse_qs(u.query)
    except ValueError as exc:
        raise GalleryError(f"{redact(url)}: not a valid postgresql:// URL ({exc})") from None
    hosts = []
    for item in u.netloc.rsplit("@", 1)[-1].split(","):
        if item.startswith("["):  # [IPv6]:port
            hosts.append(item[1:item.find("]")] if "]" in item else item[1:])
        else:
            hosts.append(unquote(item.split(":", 1)[0]))
    for h in query.get("host", []):
        hosts += h.split(",")
    hosts = [h for h in hosts if h] or os.environ.get("PGHOST", "").split(",")
    hosts += query.get("hostaddr", [])
    sslmode = (query.get("sslmode") or [os.environ.get("PGSSLMODE", "")])[-1]
    remote = [h for h in hosts if not _local(h)]
    if remote and sslmode != "verify-full":
        raise GalleryError(f"{redact(url)}: the database host {remote[0]} is not this machine: add "
                           "?sslmode=verify-full to the URL (TLS with the server's certificate checked; biometric "
                           "data never crosses a network in clear)")
    return url


def gallery_exists(spec) -> bool:
    """A file gallery: does the file exist. A URL: True (the database says when it is opened)."""
    return True if is_url(spec) else Path(spec).exists()


def open_gallery(spec, create: bool = True, readonly: bool = False, **kw) -> BaseGallery:
    """The gallery at ``spec``: a ``postgresql://`` URL (PostgreSQL + pgvector) or a file path (SQLite).

    ``create``: make it if missing (the SQLite file; the PostgreSQL tables in an existing database).
    ``readonly``: never write (live identify, ``gallery list``). Errors are one-line `GalleryError`s.
    """
    if is_url(spec):
        from stream.gallery.postgres import PostgresGallery

        return PostgresGallery(check_url(str(spec)), create=create, readonly=readonly, **kw)
    return SQLiteGallery(spec, create=create, readonly=readonly, **kw)
