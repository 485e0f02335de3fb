"""Scenario 8, credential sources: what reading a credential costs a token request.

Per token request, in one process: the client authentication step of a fetch
(``ClientAuth.apply``: get the credential, build the header or form) with the secret as
a plain value, from a ``SecretFile`` that did not change (one ``stat``), and from one that
changed before every request (``stat`` + open + read); the same for a private key
(``private_key_jwt``: signing dominates) and for an ``AssertionFile``. Against the
network round trip of the request itself (the ``get_token`` scenario), these are noise.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from _support import per_call_ns
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import tokenfleet
from tokenfleet.testing import WorkloadIssuer

URL = "https://idp.example.com/oauth2/token"
SECRET = "a-client-secret-of-forty-eight-characters-xxxxxx"  # noqa: S105 - a benchmark


async def run(latency: float = 0.0, calls: int = 2_000, rounds: int = 5) -> dict[str, Any]:
    """µs per client-authentication step of one token request, per source."""
    del latency  # no server: only the local cost of the credential is measured
    with tempfile.TemporaryDirectory() as directory:
        cases = _cases(Path(directory))
        columns: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):
            for name, case in cases.items():
                columns[name].append(await per_call_ns(case, calls) / 1000)
    return {name: min(values) for name, values in columns.items()}


def _cases(directory: Path) -> dict[str, Any]:
    secret_path = directory / "client-secret"
    secret_path.write_text(SECRET + "\n")
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path = directory / "key.pem"
    key_path.write_bytes(pem)
    assertion_path = directory / "token"
    assertion_path.write_text(WorkloadIssuer().mint("sa", URL, lifetime=3600))
    changing = tokenfleet.SecretFile(secret_path)
    clients = {
        "secret_value_us": {"client_secret": SECRET},
        "secret_file_us": {"client_secret": tokenfleet.SecretFile(secret_path)},
        "secret_file_changed_us": {"client_secret": changing},
        "key_value_us": {"private_key": pem},
        "key_file_us": {"private_key": tokenfleet.KeyFile(key_path)},
        "assertion_file_us": {"client_assertion": tokenfleet.AssertionFile(assertion_path)},
    }
    cases = {}
    for name, options in clients.items():
        auth = tokenfleet.ClientCredentials(URL, client_id="svc", **options)._auth
        forget = changing._file if name == "secret_file_changed_us" else None

        async def case(auth: Any = auth, forget: Any = forget) -> object:
            if forget is not None:
                forget.signature = None  # as if the file had changed: stat + read
            return await auth.apply([], {}, URL)

        cases[name] = case
    return cases
