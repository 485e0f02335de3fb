"""Client authentication with ``private_key_jwt`` (RFC 7523 §2.2, OIDC Core §9).

The client proves its identity with a JWT signed by its private key; the server holds
only the public key. A fresh assertion is signed for every token request.
"""

from __future__ import annotations

import asyncio

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import tokenfleet
from tokenfleet.testing import DevAuthServer


def new_rsa_key() -> tuple[bytes, bytes]:
    """A fresh RSA key pair as (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


async def main() -> None:
    private_pem, public_pem = new_rsa_key()
    async with DevAuthServer() as idp:
        idp.register_client("svc-signer", public_key=public_pem, auth_methods=("private_key_jwt",))
        async with tokenfleet.ClientCredentials(
            idp.token_url,
            client_id="svc-signer",
            auth_method="private_key_jwt",
            private_key=tokenfleet.Secret(private_pem),
            signing_alg="RS256",
            key_id="svc-signer-1",
        ) as client:
            token = await client.fetch_token(["orders:read"])
        print(f"token: {token!r}")
        print(f"token requests from svc-signer: {idp.token_requests('svc-signer')}")


if __name__ == "__main__":
    asyncio.run(main())
