"""A second resource server on loopback that records what it receives.

Used by the aiohttp and httpx integration tests to check where the token goes: it sits
on another port than the dev authorization server, so it is another origin.
"""

from __future__ import annotations

import ssl
from types import TracebackType

from aiohttp import web


class Recorder:
    """An aiohttp.web server on 127.0.0.1 and a free port (HTTPS with ``ssl_context``).

    Routes: ``/ok`` answers 200; ``/401`` always answers 401 (``?challenge=0`` leaves the
    ``WWW-Authenticate`` header out, ``?size=N`` sends an N-byte body); ``/redirect?to=URL``
    answers 307 to ``URL``.
    ``authorizations`` holds the ``Authorization`` header of every request (None if absent).
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.authorizations: list[str | None] = []
        self._ssl_context = ssl_context
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Recorder:
        app = web.Application()
        app.router.add_route("*", "/ok", self._ok)
        app.router.add_route("*", "/401", self._unauthorized)
        app.router.add_route("*", "/redirect", self._redirect)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl_context)
        await site.start()
        port = self._runner.addresses[0][1]
        scheme = "http" if self._ssl_context is None else "https"
        self.url = f"{scheme}://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _record(self, request: web.Request) -> None:
        self.authorizations.append(request.headers.get("Authorization"))

    async def _ok(self, request: web.Request) -> web.Response:
        self._record(request)
        await request.read()
        return web.json_response({"ok": True})

    async def _unauthorized(self, request: web.Request) -> web.Response:
        self._record(request)
        await request.read()
        headers = {}
        if request.query.get("challenge") != "0":
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        if "size" in request.query:
            body = b"x" * int(request.query["size"])
            return web.Response(body=body, status=401, headers=headers)
        return web.json_response({"ok": False}, status=401, headers=headers)

    async def _redirect(self, request: web.Request) -> web.Response:
        self._record(request)
        raise web.HTTPTemporaryRedirect(request.query["to"])
