"""Decoding JSON that comes from outside: one place, one set of limits.

Every document tokenfleet parses from another party (token responses, JWT headers and
payloads, discovery metadata, JWK Sets) goes through :func:`load_object`. Whatever the
bytes, it returns a ``dict`` or raises :class:`UntrustedJSONError`; callers turn that into
their own typed error. In particular nesting is bounded *before* decoding: msgspec
recurses once per level, so ``[[[[…5,000 levels…]]]]`` (10 KB) would otherwise raise
``RecursionError``, which no caller expects (a resource server would answer 500, not
401, to an anonymous request). RFC 8259 §9 lets a parser limit nesting depth.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = ["MAX_DEPTH", "UntrustedJSONError", "exceeds_depth", "load_object"]

MAX_DEPTH = 64
"""Deepest nesting accepted. Real documents stay under 8 (RFC 9396 authorization details,
Keycloak's ``resource_access`` claims); 64 leaves room and stays far from the stack."""

# A JSON string, escapes included (the unrolled-loop form: linear, no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_OPENERS = frozenset(b"[{")
_decoder = msgspec.json.Decoder(dict[str, Any])


class UntrustedJSONError(ValueError):
    """The bytes are not a usable JSON object; the message says why (never the bytes)."""


def exceeds_depth(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the brackets of ``data`` (outside strings) nest deeper than ``limit``.

    Cheap for real documents: when there are no more opening brackets than ``limit`` in
    total (two ``bytes.count`` calls, in C), no nesting can exceed it and nothing else runs.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", data)):
        if match.group()[0] in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def load_object(data: bytes) -> dict[str, Any]:
    """Decode ``data`` as a JSON object, refusing deep nesting before decoding.

    Raises:
        UntrustedJSONError: not UTF-8, not JSON, not an object, or nested deeper than
            :data:`MAX_DEPTH`.
    """
    if exceeds_depth(data):
        raise UntrustedJSONError(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError:
        raise UntrustedJSONError("JSON that is not an object") from None
    except (msgspec.DecodeError, UnicodeDecodeError):  # bad UTF-8 is not a DecodeError
        raise UntrustedJSONError("malformed JSON or invalid UTF-8") from None
    except RecursionError:  # only if the stack was already deep: still a refusal
        raise UntrustedJSONError("JSON nested too deeply for this stack") from None
