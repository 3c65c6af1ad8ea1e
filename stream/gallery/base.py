"""What both gallery backends share: the records they return, name and input checks, and the matching rules.

A gallery holds people (a name, an ``anonymous`` flag for visitor ids the live pipeline hands out, creation and
update times) and their embeddings. Every embedding records the fingerprint of the model that made it and may
carry the window (``f x J x 3`` float32, raw bytes) it was computed from, so `reembed` can re-encode it with
another model. Distances between different models' embeddings mean nothing: reads and writes refuse a gallery
that holds only another model's embeddings, naming ``cagereid gallery reembed --model DIR``.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from stream.errors import GalleryError

REEMBED_HINT = "cagereid gallery reembed --model DIR"


@dataclass
class GalleryData:
    names: list[str]  # (P,) person names, index = person index
    embeddings: np.ndarray  # (M, D) float32
    person: np.ndarray  # (M,) int64 index into names
    session: np.ndarray  # (M,) int64 enrolment session id (one per enrol command)
    anonymous: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (P,) True for visitor ids
    stale: list[str] = field(default_factory=list)  # people with only another model's embeddings (not matched)


@dataclass
class PersonInfo:
    name: str
    embeddings: int
    fingerprints: list[str]
    created: float
    updated: float
    anonymous: bool = False
    windows: int = 0  # embeddings that carry their input window (re-embeddable)


@dataclass
class SearchResult:
    """Nearest people for each query: ``names[b][j]`` with ``scores[b, j]`` (higher = closer, the
    `cages.matcher.Matcher` scores: minus the Euclidean distance, or the cosine similarity), best first."""

    names: list[list[str]]
    scores: np.ndarray  # (B, k), -inf where fewer than k people


@dataclass
class PersonRecord:
    """One person with all their rows, as `export` yields and `import_people` takes (`gallery copy`)."""

    name: str
    anonymous: bool
    created: float
    updated: float
    rows: list[dict]  # fingerprint, vector (D,) float32, source, session, created, window (f, J, 3) float32 | None


MAX_NAME = 64
_NAME = re.compile(r"[\w][\w .'-]*")  # letters (any script), digits, _, then also spaces . ' -
VISITOR_PREFIX = "visitor-"


def check_name(name: str, origin: str = "name") -> str:
    """A person's name as stored: stripped, 1..64 characters of letters, digits, spaces and . _ - ' (no markup,
    no control characters), and not a label the pipeline uses itself."""
    clean = str(name).strip()
    if not clean or len(clean) > MAX_NAME or not _NAME.fullmatch(clean) or clean in ("unknown", "..."):
        raise GalleryError(f"{origin}: invalid person name {str(name)[:80]!r} (1-{MAX_NAME} letters, digits, spaces "
                           "and . _ - ' ; not 'unknown')")
    return clean


def check_rows(origin: str, name: str, embeddings, windows) -> tuple[np.ndarray, np.ndarray | None]:
    """``embeddings (N, D)`` as little-endian float32, finite; ``windows`` None or ``(N, f, J, 3)`` float32."""
    emb = np.asarray(embeddings, dtype="<f4")
    if emb.ndim != 2 or len(emb) == 0 or emb.shape[1] == 0 or not np.isfinite(emb).all():
        raise GalleryError(f"{origin}: enrolment of {name!r} needs finite (N, D) embeddings, got {emb.shape}")
    if emb.shape[1] > 16000:
        raise GalleryError(f"{origin}: {emb.shape[1]}-dimensional embeddings are too large (at most 16000)")
    if windows is None:
        return emb, None
    win = np.asarray(windows, dtype="<f4")
    if win.ndim != 4 or len(win) != len(emb) or win.shape[3] != 3 or 0 in win.shape:
        raise GalleryError(f"{origin}: enrolment of {name!r}: windows must be (N={len(emb)}, f, J, 3), got {win.shape}")
    return emb, win


def window_from(origin: str, wf, wj, blob) -> np.ndarray | None:
    """A stored window back as ``(f, J, 3)`` float32 (None when none was stored); length-checked."""
    if blob is None:
        return None
    blob = bytes(blob)
    if not isinstance(wf, int) or not isinstance(wj, int) or wf <= 0 or wj <= 0 or len(blob) != 12 * wf * wj:
        raise GalleryError(f"{origin}: a stored window is not {wf} x {wj} x 3 float32 values (damaged gallery)")
    return np.frombuffer(blob, dtype="<f4").reshape(wf, wj, 3).copy()


def other_model_error(origin: str, held: str, fingerprint: str, what: str) -> GalleryError:
    return GalleryError(f"{origin}: holds embeddings of model {held} only, but {what} is {fingerprint}; convert it "
                        f"with `{REEMBED_HINT}` (the running model's folder; people enrolled with windows), or "
                        "pick another gallery")


def exact_search(data: GalleryData, queries: np.ndarray, k: int, metric: str, reduce: str) -> SearchResult:
    """Nearest ``k`` people of each query in memory (exact), with `cages.matcher.Matcher` scores."""
    from cages.matcher import Matcher

    q = np.asarray(queries, dtype=np.float64)
    if q.ndim != 2:
        raise GalleryError(f"search needs (B, D) queries, got {q.shape}")
    if not data.names:
        return SearchResult([[] for _ in q], np.full((len(q), k), -np.inf))
    scores = Matcher(data.embeddings, data.person, metric, reduce).scores(q)
    kk = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :kk]
    out = np.full((len(q), k), -np.inf)
    out[:, :kk] = np.take_along_axis(scores, top, axis=1)
    return SearchResult([[data.names[i] for i in row] for row in top], out)


def _stale(names_all: list[str], names_fp: list[str]) -> list[str]:
    have = set(names_fp)
    return sorted(n for n in names_all if n not in have)


class BaseGallery:
    """The interface both backends implement (`stream.gallery.sqlite.SQLiteGallery`,
    `stream.gallery.postgres.PostgresGallery`); `stream.gallery.open_gallery` picks one from the spec."""

    origin: str  # the file or the (password-free) URL, for messages
    readonly: bool
    supports_db_search = False  # True where `search` runs in the database (an index), not over a load

    # writes
    def enroll(self, name: str, embeddings: np.ndarray, fingerprint: str, source: str = "", windows=None,
               anonymous: bool = False, after_each: Callable[[int], None] | None = None) -> int:
        raise NotImplementedError

    def remove(self, name: str) -> int:
        raise NotImplementedError

    def next_visitor_name(self) -> str:
        raise NotImplementedError

    def purge_anonymous(self, older_than_s: float) -> int:
        raise NotImplementedError

    def reembed(self, embed: Callable[[np.ndarray], np.ndarray], fingerprint: str, f: int, J: int,
                batch: int = 256, progress: Callable[[int, int], None] | None = None) -> tuple[int, list[str]]:
        raise NotImplementedError

    def import_people(self, records, merge: bool = False, progress: Callable[[int], None] | None = None) -> int:
        raise NotImplementedError

    # reads
    def people(self) -> list[PersonInfo]:
        raise NotImplementedError

    def fingerprints(self) -> list[str]:
        raise NotImplementedError

    def version(self) -> int:
        raise NotImplementedError

    def load(self, fingerprint: str) -> GalleryData:
        raise NotImplementedError

    def export(self) -> Iterator[PersonRecord]:
        raise NotImplementedError

    def count_people(self) -> int:
        return len(self.people())

    def search(self, queries: np.ndarray, k: int, fingerprint: str, metric: str = "euclidean",
               reduce: str = "centroid") -> SearchResult:
        """Nearest ``k`` people per query (exact over a load here; the PostgreSQL backend asks its index)."""
        return exact_search(self.load(fingerprint), queries, k, metric, reduce)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
