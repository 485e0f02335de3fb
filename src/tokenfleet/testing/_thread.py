"""Running a server in a thread with its own event loop.

A test then needs no particular async framework or event-loop scope: the server lives
on its own loop, and the test talks to it over loopback like any client would.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Generic, Protocol, TypeVar


class _Server(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ServerT = TypeVar("ServerT", bound=_Server)


class ServerThread(Generic[ServerT]):
    """A context manager that runs a server in a new thread and stops it cleanly.

    Args:
        server: anything with ``async start()`` and ``async stop()``.
        timeout: seconds to wait for the server to start, and to stop.
    """

    def __init__(self, server: ServerT, *, timeout: float = 30.0) -> None:
        self._server = server
        self._timeout = timeout
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ServerT:
        if self._thread is not None:
            raise RuntimeError("this ServerThread was already started")
        self._thread = threading.Thread(
            target=self._run, name="tokenfleet-dev-server", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(self._timeout):
            raise TimeoutError("the server did not start in time")
        if self._error is not None:
            self._thread.join(self._timeout)
            raise RuntimeError("the server failed to start") from self._error
        return self._server

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(self._timeout)
            if thread.is_alive():
                raise TimeoutError("the server thread did not stop in time")

    def _run(self) -> None:
        # asyncio.Runner cancels leftover tasks, shuts down async generators and the
        # default executor, and closes the loop: nothing is left unclosed.
        try:
            with asyncio.Runner() as runner:
                runner.run(self._serve())
        except BaseException as error:  # noqa: BLE001 - handed over to the starting thread
            self._error = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self._server.start()
        try:
            self._ready.set()
            await self._stop.wait()
        finally:
            await self._server.stop()
