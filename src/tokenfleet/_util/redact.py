"""Secrets and outside text out of messages and logs: the one place text and URLs are
redacted or cleaned."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "printable", "redact", "redact_url"]

REDACTED = "[redacted]"


_MIN_IN_PLACE = 8  # shorter values are found inside ordinary words


def redact(text: str, secrets: Iterable[str], mask: str = REDACTED) -> str:
    """``text`` with every occurrence of each non-empty value of ``secrets`` masked.

    A value shorter than 8 characters found in ``text`` masks the whole text: masked in
    place it would mangle ordinary words and show, by where the masks fall, the value.
    """
    for value in secrets:
        if value and value in text:
            if len(value) < _MIN_IN_PLACE:
                return mask
            text = text.replace(value, mask)
    return text


def printable(text: str, limit: int = 300) -> str:
    """At most ``limit`` characters, each printable: a CR, LF or escape sequence from a
    server or a shared store must not forge log lines or reach a terminal. A longer text
    is cut between words (unless one word fills half the limit), with an ellipsis."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text[:limit])
    if len(text) <= limit:
        return cleaned
    head, space, _ = cleaned.rpartition(" ")
    if space and len(head) >= limit // 2 and not text[limit].isspace():
        return f"{head} …"
    return f"{cleaned.rstrip()} …" if text[limit].isspace() else cleaned + "…"


def redact_url(url: str) -> str:
    """``url`` with its password (userinfo or ``?password=``) replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = netloc.rpartition("@")[2]
        netloc = f"{user}:***@{host}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    hidden = [(k, "***" if k.lower().endswith("password") else v) for k, v in pairs]
    query = urlencode(hidden, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
