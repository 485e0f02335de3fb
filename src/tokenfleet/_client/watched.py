"""A credential file, read again when its resolved identity changes (see ``sources``)."""

from __future__ import annotations

import os
import stat
from typing import NoReturn

from .._exceptions import ConfigurationError, CredentialError

__all__ = ["MAX_FILE_BYTES", "WatchedFile"]

MAX_FILE_BYTES = 1 << 20  # a secret, a key or a projected token is a few KiB at most
_Signature = tuple[int, int, int, int, int]


class WatchedFile:
    """A credential file, read again when its resolved identity changes."""

    __slots__ = ("changed_at", "mode", "path", "role", "signature")

    def __init__(self, path: str | os.PathLike[str], role: str) -> None:
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise ConfigurationError(f"the {role} file path must be a non-empty str or Path")
        self.path = str(os.fspath(path))
        self.role = role
        self.signature: _Signature | None = None
        self.changed_at: float | None = None
        self.mode = 0

    def __reduce__(self) -> NoReturn:
        raise ConfigurationError("a credential file watcher cannot be pickled")

    def changed(self) -> bool:
        """One ``stat`` of the resolved path: has the file changed since it was read?"""
        try:
            info = os.stat(self.path)  # follows the ..data symlink to the current file
        except OSError as exc:
            raise self.error(exc) from None
        return _signature(info) != self.signature

    def forget(self) -> None:
        """Read the file again on the next ``changed()`` (which then says it has)."""
        self.signature = None

    def read(self) -> bytes:
        """The whole file; refuses FIFOs, devices and oversized files."""
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags)
        except OSError as exc:
            raise self.error(exc) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise self.fail("is not a regular file; point to the file itself")
            if info.st_size > MAX_FILE_BYTES:
                raise self.fail(f"is larger than {MAX_FILE_BYTES} bytes; is it the right file?")
            data = _read_all(fd)
        finally:
            os.close(fd)
        self.signature = _signature(info)
        self.changed_at = info.st_mtime
        self.mode = info.st_mode
        return data

    def problems(self) -> tuple[str, ...]:
        """Permission problems, from the last read (`tokenfleet check`)."""
        if self.mode & 0o077:
            return (
                f"{self.path} is readable by other users (mode {stat.S_IMODE(self.mode):o}): "
                "chmod 600 it (Kubernetes: defaultMode: 0400 on the volume)",
            )
        return ()

    def fail(self, what: str) -> CredentialError:
        return CredentialError(f"the {self.role} file {self.path} {what}", source=self.path)

    def error(self, exc: OSError) -> CredentialError:
        if isinstance(exc, FileNotFoundError):
            return self.fail(
                "does not exist: check the path, the volume mount and that the process "
                "writing it (kubelet, agent) runs"
            )
        if isinstance(exc, PermissionError):
            return self.fail("cannot be read by this user: check its owner and mode")
        return self.fail(f"cannot be read ({exc.strerror or type(exc).__name__})")


def _signature(info: os.stat_result) -> _Signature:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_FILE_BYTES:
        chunk = os.read(fd, 64 * 1024)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
