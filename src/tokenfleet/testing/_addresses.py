"""Where a running ``DevAuthServer`` answers: its base URL, issuer and endpoint URLs."""

from __future__ import annotations

import ssl

from aiohttp import web

__all__ = ["ServerAddresses"]


class ServerAddresses:
    """The URLs of ``DevAuthServer`` (a base class: the server sets the fields below)."""

    _runner: web.AppRunner | None
    _ssl_context: ssl.SSLContext | None
    _port: int
    _path: str

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:PORT`` (without the issuer path)."""
        if self._runner is None:
            raise RuntimeError("DevAuthServer is not running")
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    @property
    def issuer(self) -> str:
        """The issuer identifier: ``url`` plus the issuer path, if any."""
        return self.url + self._path

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return self.issuer + "/token"

    @property
    def jwks_url(self) -> str:
        """The JWK Set document."""
        return self.issuer + "/jwks"

    @property
    def resource_url(self) -> str:
        """A protected resource that accepts this server's access tokens."""
        return self.issuer + "/resource"

    @property
    def stats_url(self) -> str:
        """The JSON counters."""
        return self.issuer + "/stats"

    @property
    def metadata_url(self) -> str:
        """The RFC 8414 metadata URL (path inserted after ``/.well-known/``, §3.1)."""
        return f"{self.url}/.well-known/oauth-authorization-server{self._path}"

    @property
    def openid_configuration_url(self) -> str:
        """The OpenID Connect Discovery URL (appended to the issuer, OIDC Discovery §4)."""
        return self.issuer + "/.well-known/openid-configuration"
