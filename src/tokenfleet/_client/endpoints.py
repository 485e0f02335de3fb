"""The token endpoints of this process: a bearer token is never sent to one of them.

Every ``ClientCredentials`` notes the token endpoint it posts to (given, discovered, or
the RFC 8705 mutual-TLS alias), so the HTTP integrations refuse to attach a token to a
request for it whatever wraps the client: a manager, a manager around a manager, or a
custom source that describes nothing. Bounded like every per-key table.

``TokenPaths`` is what an integration keeps for an origin that serves token endpoints:
their paths, and the answer for each raw path a request went to (benchmarks/ scenario 9).
"""

from __future__ import annotations

import posixpath
import re
import threading
import weakref
from typing import Protocol

from yarl import URL

from .._util.bounded import BoundedDict, make_room

__all__ = [
    "Endpoint",
    "Origin",
    "TokenPaths",
    "endpoint_of",
    "endpoint_path",
    "endpoint_paths",
    "generation",
    "is_noted",
    "is_token_endpoint",
    "normal_origin",
    "normal_path",
    "note_token_endpoint",
    "origin_of",
    "watch",
]

Origin = tuple[str, str, int]  # (scheme, host, port): RFC 6454 §4, ports made explicit
Endpoint = tuple[Origin, str]  # (origin, path): query and fragment aside

_known: BoundedDict[Endpoint, None] = BoundedDict()
_lock = threading.Lock()  # clients live on several threads' loops (tests, dev servers)
generation = 0
"""Bumped each time a new token endpoint is noted (read as ``endpoints.generation``)."""


class Watcher(Protocol):
    """What caches a decision derived from the noted endpoints (see :func:`watch`)."""

    def forget(self) -> None: ...


_watchers: weakref.WeakSet[Watcher] = weakref.WeakSet()


def watch(watcher: Watcher) -> None:
    """Call ``watcher.forget()`` each time a new token endpoint is noted, while it lives.

    A decision cached from the endpoints known at ``generation`` ``g`` is safe if the
    cache stores it, then re-reads ``generation`` and drops it unless still ``g``: a note
    bumps ``generation`` before it calls ``forget()``.
    """
    with _lock:
        _watchers.add(watcher)


def origin_of(url: URL) -> Origin:
    """The origin of an absolute URL; the host lowercased and IDNA-encoded by yarl."""
    return (url.scheme, url.raw_host or "", url.port or 0)


_SLASHES = re.compile(r"/{2,}")


def endpoint_of(url: URL) -> Endpoint:
    """The token endpoint's identity, loosened to every spelling a server may route to it.

    yarl lowercases the host and makes the port explicit; the path is percent-decoded,
    its dot segments removed, doubled and trailing slashes dropped and its case folded
    (RFC 3986 §6.2.2 and beyond: servers differ), and a trailing dot leaves the host.
    Erring wide only ever keeps a token *from* a URL.
    """
    return normal_origin(origin_of(url)), endpoint_path(url)


def endpoint_path(url: URL) -> str:
    """The path part of :func:`endpoint_of`."""
    return normal_path(url.path)


def normal_path(path: str) -> str:
    """A percent-decoded URL path as :func:`endpoint_of` compares it."""
    if "." in path or "//" in path:
        # normpath removes dot segments as RFC 3986 §5.2.4 does (a URL built with
        # encoded=True keeps them); it keeps a leading "//", which the sub already folded.
        # Without a dot or a doubled slash it would change nothing (the common case).
        path = posixpath.normpath(_SLASHES.sub("/", path) or "/")
    return path.rstrip("/").casefold() or "/"


def normal_origin(origin: Origin) -> Origin:
    """``origin`` as :func:`endpoint_of` compares it: lowercase, no trailing dot."""
    scheme, host, port = origin
    return scheme.lower(), host.lower().rstrip("."), port


def note_token_endpoint(url: str) -> None:
    """Remember ``url`` as a token endpoint of this process."""
    global generation
    endpoint = endpoint_of(URL(url))
    if endpoint not in _known:
        with _lock:
            _known[endpoint] = None
            generation += 1
            for watcher in list(_watchers):
                watcher.forget()


def endpoint_paths(origin: Origin) -> frozenset[str]:
    """The paths of the token endpoints at ``origin`` (normalised) noted so far.

    For a decision cached per origin until ``generation`` moves (a miss: not per request).
    """
    with _lock:
        return frozenset(path for (where, path) in _known if where == origin)


def is_token_endpoint(url: URL) -> bool:
    """Whether ``url`` is a token endpoint some client of this process posts to."""
    return endpoint_of(url) in _known


def is_noted(endpoint: Endpoint) -> bool:
    """Whether ``endpoint`` (from :func:`endpoint_of`) is a token endpoint of this process."""
    return endpoint in _known


PATHS_KEPT = 1024  # raw paths whose answer a TokenPaths keeps (per origin)


class HasPath(Protocol):
    """A URL of either client library: ``yarl.URL`` or ``httpx.URL``."""

    @property
    def path(self) -> str: ...  # percent-decoded


class TokenPaths:
    """The verdict on an allowed origin that also serves token endpoints: every path
    gets the token but ``paths`` (the token endpoints', normalised as
    :func:`endpoint_of` does).

    Normalising a path costs more than the rest of a request's checks, so each raw
    (percent-encoded) path's answer is kept, bounded: a request to this origin then costs
    one dict lookup. The raw path and its decoding (``url.path``) come from the same
    library's URL; one ``BearerAuth``, hence one table, serves one library.
    """

    __slots__ = ("paths", "seen")

    def __init__(self, paths: frozenset[str]) -> None:
        self.paths = paths
        self.seen: dict[object, bool] = {}  # raw path -> allowed (plain: read per request)

    def excludes(self, url: HasPath) -> bool:
        """Whether ``url`` is one of the token endpoints (checked, nothing kept)."""
        return normal_path(url.path) in self.paths

    def allows(self, raw_path: object, url: HasPath) -> bool:
        """Whether ``url``, whose raw path is ``raw_path``, may get the token (kept)."""
        allowed = self.seen.get(raw_path)
        if allowed is None:
            allowed = not self.excludes(url)
            make_room(self.seen, PATHS_KEPT, raw_path)
            self.seen[raw_path] = allowed
        return allowed
