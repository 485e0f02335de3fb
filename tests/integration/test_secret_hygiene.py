"""Drive every error path, log level DEBUG, and look for secrets where they must not be.

A client secret, a private key, a client assertion or an access token must appear in no
exception text or repr (cause chain included) and in no log record. Assertions and access
tokens from the dev server are JWTs, so any ``eyJ`` (base64 of ``{"``) found is a leak.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from helpers import pem_pair
from tokenfleet import ClientCredentials, Retry, TokenFleetError, TokenManager
from tokenfleet.testing import DevAuthServer, Fault

SECRET = "S3cr3t-value:with%odd+chars é"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_PEM, PUBLIC_PEM = pem_pair(KEY)

FAULTS = [
    None,  # success
    Fault(status=503),
    Fault(status=429, retry_after=3600),
    Fault(drop_connection=True),
    Fault(status=200, malformed_json=True),
    Fault(status=200, body="<html>login</html>", content_type="text/html"),
    Fault(status=400, body=f'{{"error": "invalid_client", "error_description": "bad {SECRET}"}}'),
    Fault(status=401, body=f"secret was {SECRET}", content_type="text/plain"),
    Fault(delay=3),  # timeout
]


@pytest.fixture
def idp(idp: DevAuthServer) -> DevAuthServer:
    """The shared ``idp`` (tests/conftest.py), with this file's clients registered."""
    idp.register_client(
        "svc",
        SECRET,
        auth_methods=["client_secret_basic", "client_secret_post", "client_secret_jwt"],
    )
    idp.register_client("pk", public_key=PUBLIC_PEM, auth_methods=["private_key_jwt"])
    return idp


def forbidden(method: str, tokens: list[str]) -> list[str]:
    """This client's own credentials, every JWT (assertions, tokens) and the tokens."""
    if method == "private_key_jwt":
        credentials = PRIVATE_PEM.decode().splitlines()[1:-1]
    else:
        credentials = [SECRET, "S3cr3t"]
    return [*credentials, "eyJ", *tokens]


def exception_texts(exc: BaseException | None) -> list[str]:
    texts = []
    while exc is not None:
        texts += [str(exc), repr(exc), *(str(a) for a in exc.args)]
        exc = exc.__cause__ or exc.__context__
    return texts


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"]
)
async def test_no_secret_anywhere(
    idp: DevAuthServer, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    credentials: dict[str, object] = (
        {"client_id": "pk", "private_key": PRIVATE_PEM}
        if method == "private_key_jwt"
        else {"client_id": "svc", "client_secret": SECRET}
    )
    seen_tokens: list[str] = []
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)
    for fault in FAULTS:
        idp.clear_faults()
        if fault is not None:
            idp.inject_fault(fault)
        client = ClientCredentials(
            idp.token_url,
            auth_method=method,  # type: ignore[arg-type]
            retry=Retry(attempts=2, backoff=0.01),
            timeout=0.5,
            **credentials,  # type: ignore[arg-type]
        )
        async with TokenManager(client, min_backoff=0.01, max_backoff=0.02) as manager:
            texts += [repr(client), repr(manager), repr(manager.stats)]
            try:
                token = await manager.get_token()
            except TokenFleetError as exc:
                texts += exception_texts(exc)
            else:
                seen_tokens.append(token.access_token)
                texts += [repr(token), str(token)]
    assert seen_tokens, "the success path must have produced a token to look for"
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    assert len(caplog.records) >= len(FAULTS)  # the error paths did log
    for needle in forbidden(method, seen_tokens):
        leaks = [text for text in texts if needle in text]
        assert not leaks, f"{needle[:12]!r}... leaked in: {leaks[0][:200]!r}"


# --------------------------------------------------------------------------- credential sources


async def test_no_secret_key_or_assertion_on_the_credential_source_paths(
    idp: DevAuthServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Files that rotate, go missing, hold expired assertions; callables that fail."""
    from tokenfleet import AssertionFile, KeyFile, SecretFile
    from tokenfleet.testing import ProjectedVolume, WorkloadIssuer

    caplog.set_level(logging.DEBUG)
    workload = WorkloadIssuer()
    idp.register_federated_client("fed", workload, "sa", audience=idp.issuer)
    volume = ProjectedVolume(tmp_path / "vol", mode=0o644)
    volume.write(
        {
            "secret": SECRET,
            "key.pem": PRIVATE_PEM,
            "token": workload.mint("sa", idp.issuer, lifetime=-10),  # expired
        }
    )
    valid_assertion = workload.mint("sa", idp.issuer, lifetime=600)

    async def vault() -> str:
        raise RuntimeError(f"cannot decrypt {SECRET}")

    clients = [
        {"client_id": "svc", "client_secret": SecretFile(volume.path("secret"))},
        {"client_id": "svc", "client_secret": SecretFile(tmp_path / "missing")},
        {"client_id": "svc", "client_secret": vault},
        {
            "client_id": "pk",
            "private_key": KeyFile(volume.path("key.pem"), password=SECRET),  # wrong: unencrypted
        },
        {"client_id": "pk", "private_key": KeyFile(volume.path("key.pem"))},
        {"client_id": "fed", "client_assertion": AssertionFile(volume.path("token"))},
    ]
    texts: list[str] = []
    seen_tokens: list[str] = []
    for options in clients:
        client = ClientCredentials(idp.token_url, **options)  # type: ignore[arg-type]
        texts += [repr(client), *map(repr, client.credential_sources())]
        texts += [repr(v) for v in options.values()]
        async with client:
            for _ in range(2):
                try:
                    seen_tokens.append((await client.fetch_token()).access_token)
                except TokenFleetError as exc:
                    texts += exception_texts(exc)
                # Rotate at the server under the client (invalid_client, re-read, retry).
                idp.rotate_client_secret("svc", SECRET + "-next")
                volume.write({"secret": SECRET + "-next", "token": valid_assertion})
        texts += [repr(s) for s in client.credential_sources()]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    assert len(seen_tokens) >= 3
    needles = [SECRET, "S3cr3t", *PRIVATE_PEM.decode().splitlines()[1:-1], "eyJ", *seen_tokens]
    for needle in needles:
        leaks = [text for text in texts if needle in text]
        assert not leaks, f"{needle[:12]!r}... leaked in: {leaks[0][:200]!r}"


@pytest.mark.parametrize("right", [True, False], ids=["accepted", "refused"])
def test_no_secret_in_check_output_with_a_secret_file(
    threaded_idp: DevAuthServer, tmp_path: Path, right: bool
) -> None:
    """``tokenfleet check`` with ``TOKENFLEET_CLIENT_SECRET_FILE``: the credentials line
    names the file, never its content."""
    threaded_idp.register_client("file-svc", SECRET)
    path = tmp_path / "client-secret"
    path.write_text((SECRET if right else SECRET + "-old") + "\n")
    path.chmod(0o600)  # the CLI reads it as a SecretFile: check flags a world-readable one
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFLEET_")}
    env |= {
        "TOKENFLEET_TOKEN_URL": threaded_idp.token_url,
        "TOKENFLEET_CLIENT_ID": "file-svc",
        "TOKENFLEET_CLIENT_SECRET_FILE": str(path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tokenfleet", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    shown = result.stdout + result.stderr
    assert "credentials" in shown and result.returncode == (0 if right else 3)
    for needle in (SECRET, "S3cr3t", "eyJ"):
        assert needle not in shown, shown[-2000:]
