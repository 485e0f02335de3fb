"""Changing a running ``DevAuthServer``'s clients: rotation and federated credentials."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable

from ._clients import ClientAuthenticator, RegisteredClient, load_public_key, new_client
from ._federation import FederatedCredential, WorkloadIssuer

__all__ = ["ClientAdmin"]


class ClientAdmin:
    """The credential side of ``DevAuthServer`` (a base class: it owns the registry)."""

    _clients: dict[str, RegisteredClient]
    _authenticator: ClientAuthenticator

    def rotate_client_secret(self, client_id: str, new_secret: str | None = None) -> str:
        """Give ``client_id`` a new secret; the old one is refused from now on.

        Returns:
            the new secret (a random one unless ``new_secret`` is given).
        """
        secret = new_secret or secrets.token_urlsafe(48)
        self._clients[client_id] = dataclasses.replace(
            self._registered(client_id), client_secret=secret
        )
        return secret

    def rotate_client_key(self, client_id: str, public_key: str | bytes) -> None:
        """Trust only ``public_key`` (PEM) for ``client_id``'s ``private_key_jwt`` from now on."""
        self._clients[client_id] = dataclasses.replace(
            self._registered(client_id), public_key=load_public_key(public_key)
        )

    def register_federated_client(
        self,
        client_id: str,
        issuer: WorkloadIssuer,
        subject: str,
        *,
        audience: str | None = None,
        scopes: Iterable[str] | None = None,
        default_scopes: Iterable[str] = (),
    ) -> None:
        """Register a client that authenticates with assertions minted by ``issuer``.

        As a federated identity credential does: an assertion is accepted when it is
        signed by the workload issuer's key and its ``iss``, ``sub`` and ``aud`` are the
        trusted ones (``aud`` defaults to this server's issuer or token URL). Its ``exp``
        is checked with no clock skew; refused assertions are counted by reason in
        ``assertion_rejections()``.
        """
        self._clients[client_id] = new_client(
            client_id,
            None,
            public_key=issuer.public_key_pem,
            auth_methods=("private_key_jwt",),
            scopes=scopes,
            default_scopes=default_scopes,
            audiences=None,
            resources=None,
            grant_fewer_scopes=(),
            grant_allowed=True,
            tls_client_cn=None,
        )
        self._authenticator.federated[client_id] = FederatedCredential(
            issuer.issuer, subject, audience, load_public_key(issuer.public_key_pem)
        )

    def set_tls_client_cn(self, client_id: str, common_name: str) -> None:
        """Accept only certificates with subject CN ``common_name`` for ``tls_client_auth``."""
        self._clients[client_id] = dataclasses.replace(
            self._registered(client_id), tls_client_cn=common_name
        )

    def assertion_rejections(self) -> dict[str, int]:
        """Client assertions refused since start, by reason (``expired``, ``audience``...)."""
        return dict(self._authenticator.rejections)

    def _registered(self, client_id: str) -> RegisteredClient:
        try:
            return self._clients[client_id]
        except KeyError:
            raise ValueError(f"no client {client_id!r} is registered") from None
