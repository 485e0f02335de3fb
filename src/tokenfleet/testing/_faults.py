"""Fault injection for the dev authorization server's token endpoint."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

from ._errors import NO_STORE

_SLOW_BODY_CHUNK = 8


@dataclass(frozen=True, slots=True)
class Fault:
    """How the token endpoint misbehaves while the fault is injected.

    Attributes:
        status: HTTP status of the answer.
        body: the body; None gives an RFC 6749 §5.2 error that fits ``status``
            (``temporarily_unavailable`` for 5xx, ``slow_down`` for 429).
        headers: extra response headers.
        retry_after: value of the ``Retry-After`` header (RFC 9110 §10.2.3), if any.
        content_type: the response ``Content-Type``.
        drop_connection: close the TCP connection without answering.
        slow_body: answer the request normally, but trickle the body out over this many
            seconds.
        malformed_json: answer 200 with a truncated JSON body.
        delay: seconds to wait before answering (to make clients time out).
    """

    status: int = 503
    body: str | bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: str | float | None = None
    content_type: str = "application/json"
    drop_connection: bool = False
    slow_body: float = 0.0
    malformed_json: bool = False
    delay: float = 0.0

    def response(self) -> web.Response:
        """The canned response for a status/body fault."""
        headers = {**NO_STORE, **self.headers}
        if self.retry_after is not None:
            headers["Retry-After"] = _format_retry_after(self.retry_after)
        body = self.body if self.body is not None else _default_body(self.status)
        return web.Response(
            body=body.encode() if isinstance(body, str) else body,
            status=self.status,
            headers={**headers, "Content-Type": self.content_type},
        )


def _format_retry_after(value: str | float) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


def _default_body(status: int) -> str:
    if status == 429:
        error = "slow_down"
    elif status == 500:
        error = "server_error"
    elif status >= 500:
        error = "temporarily_unavailable"
    else:
        error = {400: "invalid_request", 401: "invalid_client", 403: "access_denied"}.get(
            status, "server_error"
        )
    return json.dumps({"error": error, "error_description": f"injected fault ({status})"})


def malformed_response() -> web.Response:
    """A 200 token response whose JSON is cut off half-way."""
    body = b'{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0cnVuY2F0ZWQifQ","token_ty'
    return web.Response(
        body=body, status=200, headers={**NO_STORE, "Content-Type": "application/json"}
    )


async def trickle(
    request: web.Request, response: web.Response, duration: float
) -> web.StreamResponse:
    """Send ``response`` in small chunks spread over ``duration`` seconds."""
    body = response.body
    assert isinstance(body, bytes)
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    chunks = [body[i : i + _SLOW_BODY_CHUNK] for i in range(0, len(body), _SLOW_BODY_CHUNK)]
    pause = duration / max(len(chunks) - 1, 1)
    try:
        for index, chunk in enumerate(chunks):
            if index:
                await asyncio.sleep(pause)
            await stream.write(chunk)
        await stream.write_eof()
    except ConnectionResetError:  # aiohttp's ClientConnectionResetError included
        pass  # the client gave up mid-body (its timeout): nothing left to send it
    return stream


@dataclass(slots=True)
class _Rule:
    fault: Fault
    remaining: int | None
    ratio: float | None


class FaultPlan:
    """The injected faults, consulted once per token request (thread-safe)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._rng = rng or random.Random()

    def inject(self, fault: Fault, *, count: int | None, ratio: float | None) -> None:
        """Add a fault for the next ``count`` requests, or a ``ratio`` of them, or all."""
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        if ratio is not None and not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must be between 0 and 1")
        with self._lock:
            self._rules.append(_Rule(fault, count, ratio))

    def clear(self) -> None:
        """Remove every injected fault."""
        with self._lock:
            self._rules.clear()

    def next_fault(self) -> Fault | None:
        """The fault for the current request, if any; consumes one use of a counted fault."""
        with self._lock:
            for rule in self._rules:
                if rule.ratio is not None and self._rng.random() >= rule.ratio:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                return rule.fault
        return None
