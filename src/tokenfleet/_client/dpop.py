"""DPoP on the client side (RFC 9449): proofs for token requests, nonces, binding.

Sans-I/O helpers that ``ClientCredentials`` and the HTTP integrations call:

* :class:`NonceMemory` remembers the latest ``DPoP-Nonce`` per server (token endpoint)
  or per origin (resource servers), updated from every response that carries one (RFC
  9449 §8.2: a server may send a new nonce with any response), bounded in size;
* :class:`TokenRequestDPoP` adds the proof to a token request, decides the one retry
  after ``use_dpop_nonce`` (§8), and checks that the answer is really DPoP-bound (§5);
* :func:`dpop_challenge` reads the ``DPoP`` challenge of a 401 (§7.1), ignoring any
  ``Bearer`` challenge in the same header.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Hashable, MutableMapping

import msgspec
from yarl import URL

from .._exceptions import ConfigurationError, DPoPDowngrade, UseDPoPNonce
from .._jwt.dpop_key import DPoPKey
from .._models import Token
from .endpoints import origin_of

__all__ = [
    "NonceMemory",
    "ResourceDPoP",
    "TokenRequestDPoP",
    "dpop_challenge",
    "dpop_setting",
]

logger = logging.getLogger("tokenfleet")

_MAX_SERVERS = 1024
_MAX_NONCE = 512  # a nonce longer than this is not one worth echoing back
# RFC 9449 §8.1: nonce = 1*NQCHAR (visible ASCII without '"' and '\').
_NQCHAR = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# A challenge item (RFC 9110 §11.2): an auth-param (name=token or name="quoted string")
# or else an auth-scheme name, which starts the next challenge.
_ITEM = re.compile(
    r'\s*(?:([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))'
    r"|([A-Za-z0-9_.!#$%&'*+^`|~-]+))\s*,?"
)


def dpop_setting(dpop: bool | DPoPKey | None) -> DPoPKey | None:
    """``ClientCredentials(dpop=...)``: ``True`` makes an ES256 key, a key is used as is."""
    if dpop is None or dpop is False:
        return None
    if dpop is True:
        return DPoPKey.generate("ES256")
    if isinstance(dpop, DPoPKey):
        return dpop
    raise ConfigurationError(
        f"dpop= takes True, False or a tokenfleet.DPoPKey, not {type(dpop).__name__}"
    )


class NonceMemory:
    """The latest ``DPoP-Nonce`` of each server, oldest forgotten beyond a bound."""

    def __init__(self, limit: int = _MAX_SERVERS) -> None:
        self._nonces: OrderedDict[Hashable, str] = OrderedDict()
        self._limit = limit

    def get(self, server: Hashable) -> str | None:
        """The nonce to put in the next proof for ``server``, if it gave one."""
        return self._nonces.get(server)

    def observe(self, server: Hashable, header: str | None) -> bool:
        """Remember ``header`` (a response's ``DPoP-Nonce``) if valid; whether it was new."""
        if not header or len(header) > _MAX_NONCE or not _NQCHAR.fullmatch(header):
            return False
        if self._nonces.get(server) == header:
            return False
        self._nonces[server] = header
        self._nonces.move_to_end(server)
        while len(self._nonces) > self._limit:
            self._nonces.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._nonces)


class TokenRequestDPoP:
    """DPoP for the token requests of one client (RFC 9449 §5 and §8).

    Args:
        key: the client's proof key.
        allow_downgrade: accept a ``Bearer`` answer (unbound) instead of raising.
    """

    def __init__(self, key: DPoPKey, *, allow_downgrade: bool = False) -> None:
        self.key = key
        self.allow_downgrade = allow_downgrade
        self.nonces = NonceMemory()
        self.nonce_retries = 0

    def proof(self, token_url: str) -> tuple[str, str | None]:
        """The ``DPoP`` header value for a POST to ``token_url``, and the nonce it used."""
        nonce = self.nonces.get(token_url)
        return self.key.proof("POST", token_url, nonce=nonce), nonce

    def observe(self, token_url: str, header: str | None) -> None:
        """Remember the ``DPoP-Nonce`` of any token endpoint response (§8.2)."""
        self.nonces.observe(token_url, header)

    def may_retry(self, error: UseDPoPNonce, token_url: str, sent: str | None) -> bool:
        """After ``use_dpop_nonce``: retry once if the server gave a nonce we did not send."""
        fresh = self.nonces.get(token_url)
        if fresh is None or fresh == sent:
            return False
        self.nonce_retries += 1
        logger.debug("tokenfleet: %s asked for a DPoP nonce; retrying once with it", token_url)
        return True

    def bind(self, token: Token, token_url: str) -> Token:
        """The token with its key attached, after checking it is DPoP-bound (§5).

        Raises:
            DPoPDowngrade: the server answered ``Bearer`` (or another type) and the
                client does not allow that.
        """
        if token.token_type.lower() == "dpop":
            return msgspec.structs.replace(token, token_type="DPoP", dpop_key=self.key)  # noqa: S106
        if self.allow_downgrade:
            logger.warning(
                "tokenfleet: %s answered a DPoP token request with a %s token; using it "
                "unbound (allow_dpop_downgrade=True)",
                token_url,
                token.token_type,
            )
            return token
        raise DPoPDowngrade(
            f"we sent a DPoP proof to {token_url} but got token_type {token.token_type!r}, "
            "not 'DPoP': the token is not bound to our key (is DPoP enabled for this client "
            "at the server?). allow_dpop_downgrade=True accepts it unbound"
        )


def dpop_challenge(www_authenticate: str) -> dict[str, str] | None:
    """The parameters of the ``DPoP`` challenge in a ``WWW-Authenticate`` value, or None.

    A header may hold several challenges (``Bearer realm="x", DPoP error="use_dpop_nonce"``,
    RFC 9449 §7.1); only the DPoP one's parameters are returned, names lowercased.
    """
    params: dict[str, str] | None = None
    scheme = ""
    for item in _ITEM.finditer(www_authenticate[:4096]):
        name, quoted, bare, new_scheme = item.groups()
        if new_scheme is not None:
            scheme = new_scheme.lower()
            if scheme == "dpop" and params is None:
                params = {}
        elif scheme == "dpop" and params is not None and name is not None:
            value = quoted.replace('\\"', '"') if quoted is not None else (bare or "")
            params[name.lower()] = value
    return params


class ResourceDPoP:
    """DPoP for resource requests of one ``BearerAuth`` (RFC 9449 §7 and §9).

    ``apply`` sets ``Authorization`` (``DPoP <token>`` for a bound token, never
    ``Bearer``) and a fresh proof with ``ath``; ``observe`` remembers each origin's
    ``DPoP-Nonce``; ``nonce_challenge`` says whether a 401 asked for a nonce we did not
    send yet, which earns the request one retry with the same token.
    """

    def __init__(self) -> None:
        self.nonces = NonceMemory()

    def apply(
        self, headers: MutableMapping[str, str], token: Token, method: str, url: URL
    ) -> str | None:
        """Authenticate one request; returns the nonce its proof carries, if any.

        Raises:
            ConfigurationError: a ``DPoP`` token without its key (it cannot be sent).
        """
        key = token.dpop_key
        if key is None:
            if token.token_type.lower() == "dpop":
                raise ConfigurationError(
                    "a DPoP token without its key cannot be sent (and must not be sent as "
                    "Bearer): its source lost the key; use ClientCredentials(dpop=...)"
                )
            headers["Authorization"] = token.authorization
            return None
        nonce = self.nonces.get(origin_of(url))
        headers["Authorization"] = token.authorization
        headers["DPoP"] = key.proof(method, url, access_token=token.access_token, nonce=nonce)
        return nonce

    def observe(self, token: Token, url: URL, nonce_header: str | None) -> None:
        """Remember the ``DPoP-Nonce`` of a response to a DPoP request (§9)."""
        if token.dpop_key is not None and nonce_header:
            self.nonces.observe(origin_of(url), nonce_header)

    def nonce_challenge(
        self, token: Token, url: URL, www_authenticate: str | None, sent: str | None
    ) -> bool:
        """Whether a 401 is ``DPoP error="use_dpop_nonce"`` with a nonce we have not sent."""
        if token.dpop_key is None or not www_authenticate:
            return False
        challenge = dpop_challenge(www_authenticate)
        if challenge is None or challenge.get("error") != "use_dpop_nonce":
            return False
        fresh = self.nonces.get(origin_of(url))
        return fresh is not None and fresh != sent
