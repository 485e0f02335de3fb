"""The ``tokenfleet`` command line: ``token``, ``decode``, ``check``, ``serve``, ``demo``.

The commands live in :mod:`tokenfleet._cli`; this module is the console-script entry
point (``tokenfleet = "tokenfleet.cli:main"``). See ``tokenfleet --help`` and docs/cli.md.
"""

from __future__ import annotations

from ._cli import main as main

__all__ = ["main"]
