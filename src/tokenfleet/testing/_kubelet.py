"""Files laid out and rotated the way the kubelet does it, for credential-rotation tests.

A projected or secret volume is a directory where each visible file is a symlink
``NAME -> ..data/NAME`` and ``..data`` is a symlink to a timestamped directory. An update
writes a new timestamped directory, points a temporary symlink at it and renames that
over ``..data`` (atomic), then removes the old directory: the file's own mtime never
moves, only what the path resolves to.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["ProjectedVolume", "TokenRotator"]

_serial = itertools.count()


class ProjectedVolume:
    """A directory that is updated as a Kubernetes projected (or secret) volume.

    Args:
        directory: created if missing.
        mode: the files' permission bits (Kubernetes' ``defaultMode``).
    """

    def __init__(self, directory: str | os.PathLike[str], mode: int = 0o600) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.mode = mode

    def path(self, name: str) -> Path:
        """The path an application is given, e.g. ``/var/run/secrets/tokens/token``."""
        return self.directory / name

    def write(self, files: Mapping[str, str | bytes]) -> None:
        """Publish new contents for ``files`` with one atomic ``..data`` swap."""
        stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
        target = self.directory / f"..{stamp}.{os.getpid()}.{next(_serial)}"
        target.mkdir()
        for name, data in files.items():
            file = target / name
            file.write_bytes(data.encode() if isinstance(data, str) else data)
            file.chmod(self.mode)
        data_link = self.directory / "..data"
        old = os.readlink(data_link) if data_link.is_symlink() else None
        temporary = self.directory / "..data_tmp"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(target.name)
        temporary.replace(data_link)  # rename(2): readers see the old or the new, never none
        for name in files:
            link = self.directory / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        if old is not None:
            shutil.rmtree(self.directory / old, ignore_errors=True)


class TokenRotator:
    """Rewrites a token in a ``ProjectedVolume`` every ``every`` seconds, from a thread.

    Like the kubelet refreshing a projected service-account token (it does so at 80 % of
    the token's life). The first token is written on entering.

    Args:
        volume: where to write.
        name: the file name, e.g. ``"token"``.
        mint: makes the next token (e.g. ``WorkloadIssuer.mint``).
        every: seconds between rewrites.
    """

    def __init__(
        self, volume: ProjectedVolume, name: str, mint: Callable[[], str], every: float
    ) -> None:
        self.volume = volume
        self.name = name
        self.path = volume.path(name)
        self._mint = mint
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tokenfleet:kubelet", daemon=True)
        self.writes = 0

    def rotate(self) -> None:
        """Write a new token now."""
        self.volume.write({self.name: self._mint()})
        self.writes += 1

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.rotate()

    def __enter__(self) -> TokenRotator:
        self.rotate()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
