"""The directory of a ``FileStore``: checked once, opened once, used through its descriptor.

Why a descriptor: a path is looked up again at every call, so whoever can rename things
in one of its parents (a shared ``/tmp``, a parent writable by others) could swap our
directory, or a file in it, for their own between our check and our use. The directory
is checked (ours, private, not a symlink, no parent writable by others without the sticky
bit), opened with ``O_DIRECTORY | O_NOFOLLOW``, and every file operation afterwards is
relative to that descriptor (``dir_fd=``). Files are opened with ``O_NOFOLLOW |
O_NONBLOCK`` and refused unless they are regular files: a FIFO planted in place of a
token file would otherwise block the event loop in ``open``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import weakref
from pathlib import Path

from .._exceptions import ConfigurationError, StoreError

__all__ = ["Directory"]

MAX_FILE = 1 << 20  # a token file is a few KB; anything bigger is not ours
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_LOCK = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Directory:
    """A private directory opened once; file names are relative to it.

    Raises:
        ConfigurationError: the directory cannot be created, is a symlink, is not a
            directory, is owned by another user or writable by group or others, or one
            of its parents is writable by others without the sticky bit.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if "\x00" in str(path):  # every os call would raise a bare ValueError on it
            raise ConfigurationError(f"FileStore: the directory path {str(path)!r} has a NUL byte")
        _check_parents(path)
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(path)
        except OSError as exc:
            raise ConfigurationError(f"FileStore: cannot create directory {path}: {exc}") from exc
        if stat.S_ISLNK(info.st_mode):
            raise ConfigurationError(
                f"FileStore: {path} is a symlink; give the real directory (a link in a shared "
                "directory lets its owner point it elsewhere)"
            )
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise ConfigurationError(f"FileStore: cannot open directory {path}: {exc}") from exc
        weakref.finalize(self, os.close, self.fd)
        _check_private(path, os.fstat(self.fd))

    def modified(self) -> int:
        """The directory's mtime (ns): changes when a file in it is created or renamed."""
        try:
            return os.fstat(self.fd).st_mtime_ns
        except OSError:
            return -1

    def version(self, name: str) -> tuple[int, int, int] | None:
        """(inode, mtime, size) of ``name``: a replaced file has a new one; ``None``: none."""
        try:
            info = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def read(self, name: str) -> bytes | None:
        """The file's bytes, ``None`` if it does not exist; ``StoreError`` otherwise."""
        fd = self._open(name, _READ, "read")
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as file:
            try:
                return file.read(MAX_FILE + 1)
            except OSError as exc:
                raise self.error("read", name, exc) from exc

    def open_lock(self, name: str) -> int:
        """A descriptor of the lock file ``name`` (created if missing) to ``flock``."""
        fd = self._open(name, _LOCK, "open the lock file")
        if fd is None:  # O_CREAT in a directory that was deleted meanwhile
            raise self.error("open the lock file", name, FileNotFoundError(errno.ENOENT, ""))
        return fd

    def _open(self, name: str, flags: int, action: str) -> int | None:
        """A descriptor of the regular file ``name``, ``None`` if there is none.

        The type is checked on the raw descriptor, before any ``os.fdopen`` (which raises
        ``IsADirectoryError`` for a directory planted in the file's place).
        """
        try:
            fd = os.open(name, flags, 0o600, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self.error(action, name, exc) from exc
        try:
            self._regular(fd, name)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def write_atomic(self, name: str, data: bytes) -> None:
        """Write ``data`` to ``name`` atomically; a failure leaves no temp file behind."""
        tmp = f".{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, _CREATE, 0o600, dir_fd=self.fd)
        except OSError as exc:
            raise self.error("write", name, exc) from exc
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException as exc:
            self.unlink(tmp, quietly=True)
            if isinstance(exc, OSError):
                raise self.error("write", name, exc) from exc
            raise

    def unlink(self, name: str, *, quietly: bool = False) -> bool:
        """Delete ``name``; whether it existed."""
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            if quietly:
                return False
            raise self.error("delete", name, exc) from exc
        return True

    def unlink_if(self, name: str, header: bytes) -> bool:
        """Delete ``name`` only if its content starts with ``header``.

        The check and the unlink are not one atomic step: the file is first moved aside
        (atomically), checked there, and put back with ``link`` if it holds something else
        (unless a newer file arrived meanwhile, which then wins).
        """
        data = self.read(name)
        if data is None or not data.startswith(header):
            return False  # the common case: nothing to move
        aside = f".{name}.{os.getpid()}.{secrets.token_hex(6)}.del"
        try:
            os.rename(name, aside, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self.error("delete", name, exc) from exc
        try:
            if (self.read(aside) or b"").startswith(header):
                return True
            with contextlib.suppress(FileExistsError):
                os.link(aside, name, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)
            return False
        finally:
            self.unlink(aside, quietly=True)

    def versions(self, suffix: str, prune_before: float) -> dict[str, tuple[int, int]]:
        """Each file named ``*suffix`` with its (inode, mtime); older ones are deleted.

        Blocking (one ``stat`` per file): run it in a thread. ``os.replace`` gives a file a
        new inode, so a rewritten file shows as a new version.
        """
        found: dict[str, tuple[int, int]] = {}
        with contextlib.suppress(OSError):  # an unreadable directory: nothing this round
            for entry in os.scandir(self.fd):
                if not entry.name.endswith(suffix):
                    continue
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if info.st_mtime < prune_before:
                        self.unlink(entry.name, quietly=True)
                    else:
                        found[entry.name] = (info.st_ino, info.st_mtime_ns)
        return found

    def _regular(self, fd: int, name: str) -> None:
        try:
            mode = os.fstat(fd).st_mode
        except OSError as exc:
            raise self.error("check", name, exc) from exc
        if not stat.S_ISREG(mode):
            raise StoreError(
                f"FileStore: {self.path / name} is not a regular file (a FIFO, device or "
                "directory was put in its place); remove it"
            )

    def error(self, action: str, name: str, exc: OSError) -> StoreError:
        reason = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        return StoreError(
            f"FileStore: cannot {action} {self.path / name} ({reason}: {exc.strerror or exc})"
        )


def _check_parents(path: Path) -> None:
    """Refuse a parent that others may write to without the sticky bit.

    Whoever can write to a parent can rename our directory away and put their own in its
    place; the sticky bit (``/tmp``) stops them renaming what they do not own.
    """
    parent = Path(os.path.realpath(path.absolute().parent))
    for directory in (parent, *parent.parents):
        try:
            info = os.stat(directory)
        except OSError:
            continue  # not created yet: mkdir creates it with our umask
        if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
            raise ConfigurationError(
                f"FileStore: {directory}, a parent of {path}, is writable by others "
                f"(mode {stat.S_IMODE(info.st_mode):o}, no sticky bit); anyone could replace "
                "the store's directory. Use a directory under your home"
            )


def _check_private(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigurationError(f"FileStore: {path} is not a directory")
    if info.st_uid != os.geteuid():
        raise ConfigurationError(
            f"FileStore: {path} is owned by uid {info.st_uid}, not by this user "
            f"(uid {os.geteuid()}); use a directory of your own"
        )
    if info.st_mode & 0o022:
        raise ConfigurationError(
            f"FileStore: {path} is writable by group or others (mode "
            f"{stat.S_IMODE(info.st_mode):o}); run `chmod 700 {path}` or choose another"
        )
