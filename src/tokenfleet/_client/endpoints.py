"""The token endpoints of this process: a bearer token is never sent to one of them.

Every ``ClientCredentials`` notes the token endpoint it posts to (given, discovered, or
the RFC 8705 mutual-TLS alias), so the HTTP integrations refuse to attach a token to a
request for it whatever wraps the client: a manager, a manager around a manager, or a
custom source that describes nothing. Bounded like every per-key table.
"""

from __future__ import annotations

import posixpath
import re
import threading

from yarl import URL

from .._util.bounded import BoundedDict

__all__ = [
    "Endpoint",
    "Origin",
    "endpoint_of",
    "is_token_endpoint",
    "note_token_endpoint",
    "origin_of",
]

Origin = tuple[str, str, int]  # (scheme, host, port): RFC 6454 §4, ports made explicit
Endpoint = tuple[Origin, str]  # (origin, path): query and fragment aside

_known: BoundedDict[Endpoint, None] = BoundedDict()
_lock = threading.Lock()  # clients live on several threads' loops (tests, dev servers)


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
    scheme, host, port = origin_of(url)
    # normpath removes dot segments as RFC 3986 §5.2.4 does (a URL built with
    # encoded=True keeps them); it keeps a leading "//", which the sub already folded.
    path = posixpath.normpath(_SLASHES.sub("/", url.path) or "/").rstrip("/").casefold()
    return (scheme.lower(), host.lower().rstrip("."), port), path or "/"


def note_token_endpoint(url: str) -> None:
    """Remember ``url`` as a token endpoint of this process."""
    endpoint = endpoint_of(URL(url))
    if endpoint not in _known:
        with _lock:
            _known[endpoint] = None


def is_token_endpoint(url: URL) -> bool:
    """Whether ``url`` is a token endpoint some client of this process posts to."""
    return endpoint_of(url) in _known
