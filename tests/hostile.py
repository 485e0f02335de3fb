"""Helpers for tests of hostile servers: walking exception chains for credentials, a
server that answers unparseable HTTP, a session middleware bound after the fact."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import aiohttp

from tokenfleet.aiohttp import BearerAuth


def chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception reachable through ``__cause__`` and ``__context__``."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        if isinstance(current, BaseExceptionGroup):
            todo += list(current.exceptions)


def texts(error: BaseException) -> Iterator[str]:
    """Everything a log line, a traceback or an error tracker may print of the chain."""
    for current in chain(error):
        yield repr(current)
        yield str(current)
        yield repr(current.args)
        request_info = getattr(current, "request_info", None)
        if request_info is not None:
            yield repr(request_info)
            yield repr(dict(request_info.headers))
        yield repr(getattr(current, "history", ""))


def assert_no_credentials(error: BaseException, *secrets: str) -> None:
    for text in texts(error):
        for secret in secrets:
            assert secret not in text, f"{type(error).__name__}'s chain shows a credential"


async def malformed_http_server() -> asyncio.Server:
    """Answers every request with a response aiohttp cannot parse (a bad header)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad\x01Header: x\r\n\r\n{}")
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


def basic(client_id: str, secret: str) -> str:
    return base64.b64encode(f"{client_id}:{secret}".encode()).decode()


class Deferred:
    """A session middleware that calls one set later: the session, the client that
    shares it and the BearerAuth that uses the client's manager refer to each other."""

    def __init__(self) -> None:
        self.middlewares: list[BearerAuth] = []

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        for middleware in reversed(self.middlewares):
            handler = _bind(middleware, handler)
        return await handler(request)


def _bind(middleware: BearerAuth, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientHandlerType:
    async def call(request: aiohttp.ClientRequest) -> aiohttp.ClientResponse:
        return await middleware(request, handler)

    return call
