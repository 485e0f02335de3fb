"""Fuzzing credential material: secrets given as bytes, and the files sources read.

The promise: any bytes as a secret, any content of a secret, key or assertion file gives
a client or a typed error (``ConfigurationError`` / ``CredentialError``), never a
``UnicodeDecodeError`` or another bare exception, and never an error whose text, cause
or context carries the material.
"""

from __future__ import annotations

import asyncio
import tempfile
import traceback
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tokenfleet import (
    AssertionFile,
    ClientCredentials,
    ConfigurationError,
    CredentialError,
    KeyFile,
    SecretFile,
)
from tokenfleet._client.auth import secret_text

URL = "https://idp.example.com/token"
MARK = b"FUZZ-MATERIAL-"


def shown(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    seen: BaseException | None = exc
    while seen is not None:
        text += repr(seen) + repr(getattr(seen, "object", ""))
        seen = seen.__cause__ or seen.__context__
    return text


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_any_bytes_secret_is_a_client_or_a_typed_error(noise: bytes) -> None:
    secret = noise + MARK + noise
    for method in ("client_secret_basic", "client_secret_post", "client_secret_jwt"):
        error: BaseException | None = None
        try:
            ClientCredentials(URL, client_id="svc", client_secret=secret, auth_method=method)  # type: ignore[arg-type]
        except ConfigurationError as exc:
            error = exc
        if error is not None:
            assert MARK.decode() not in shown(error) and repr(secret) not in shown(error)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=256), st.sampled_from(["secret", "key", "assertion"]))
def test_any_file_content_is_a_credential_or_a_typed_error(content: bytes, kind: str) -> None:
    data = content + MARK + content

    async def read(path: Path) -> None:
        if kind == "secret":
            secret_text(await SecretFile(path).get())
        elif kind == "key":
            await KeyFile(path).get()
        else:
            await AssertionFile(path).get()

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "credential"
        path.write_bytes(data)
        error: BaseException | None = None
        try:
            asyncio.run(read(path))
        except (CredentialError, ConfigurationError) as exc:
            error = exc
    if error is not None:
        assert MARK.decode() not in shown(error)
