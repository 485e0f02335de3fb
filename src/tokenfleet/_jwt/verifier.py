"""``JWTVerifier``: verify JWT access tokens against the issuer's JWK Set (RFC 9068 §4).

The I/O shell around ``_jwt`` (claims) and ``_jwks`` (keys and algorithm policy). The JWK
Set is fetched with aiohttp, cached, and fetched again when a token names a ``kid`` the
cache lacks, or when the cache is older than ``jwks_max_age``. Refetches are single-flight
(one request however many verifications wait for it) and an unknown ``kid`` triggers at
most one per ``jwks_refresh_interval``, so a flood of forged tokens cannot turn into a
flood of JWKS requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

import aiohttp

from .._client import discovery
from .._client.http import LazySession
from .._client.request import check_endpoint_url
from .._exceptions import ConfigurationError, DiscoveryError, FetchTimeout, TransportError
from .._models import Token
from .._util.closing import AsyncClosing
from .._util.redact import printable
from .claims import Claims, check_claims, claims_from, is_at_jwt, split_jws
from .dpop import DPoPVerifier, bound_jkt
from .errors import (
    DisallowedAlgorithm,
    DPoPProofMissing,
    InvalidSignature,
    MalformedToken,
    UnknownKey,
)
from .jwks import ASYMMETRIC_ALGORITHMS, KeySet, VerificationKey, check_algorithms, parse_jwks

__all__ = ["JWTVerifier"]

logger = logging.getLogger("tokenfleet")


class JWTVerifier(AsyncClosing):
    """Verifies JWT access tokens: signature (JWKS), ``iss``, ``aud``, ``exp``, ``nbf``.

    For resource servers, or for a client that wants defence in depth; a client that
    only needs to know its own token's expiry or scopes can read ``token.claims``.

    Args:
        issuer: the expected ``iss``, exactly.
        audience: the expected ``aud`` (one, or several of which the token must name at
            least one). ``None`` skips the check; pass it explicitly, knowingly.
        jwks_url: the JWK Set URL; ``None`` discovers it from the issuer's metadata
            (RFC 8414 / OpenID Connect Discovery).
        algorithms: allowed JWS algorithms, asymmetric only. ``None``: each key's
            declared ``alg``, or the one its type implies (RSA: RS256, EC: by curve).
        leeway: seconds of clock skew tolerated on ``exp`` and ``nbf``.
        require_at_jwt: refuse tokens whose header ``typ`` is not ``at+jwt``
            (RFC 9068 §4 says resource servers must check it; many servers still send
            ``JWT``, hence off by default).
        jwks_refresh_interval: the shortest time between two JWKS fetches caused by
            unknown ``kid`` values.
        jwks_max_age: refetch the JWK Set when older than this, so keys the issuer has
            removed stop verifying (the old set is kept if the refetch fails).
        timeout: seconds for one JWKS or metadata request.
        session: an aiohttp session to use; it is not closed by the verifier.
        allow_insecure_http: permit plain-http issuer and JWKS URLs off loopback.
        dpop: the :class:`~tokenfleet.DPoPVerifier` that checks the proofs of
            DPoP-bound tokens (default: one with its default settings).
        clock: Unix-time clock for ``exp`` and ``nbf``, injectable for tests.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Iterable[str] | None,
        jwks_url: str | None = None,
        algorithms: Iterable[str] | None = None,
        leeway: float = 30.0,
        require_at_jwt: bool = False,
        jwks_refresh_interval: float = 30.0,
        jwks_max_age: float = 300.0,
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        allow_insecure_http: bool = False,
        dpop: DPoPVerifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dpop = dpop if dpop is not None else DPoPVerifier(clock=clock)
        self.issuer = discovery.check_issuer(issuer, allow_insecure_http=allow_insecure_http)
        if isinstance(audience, str):
            self.audiences: frozenset[str] | None = frozenset({audience})
        else:
            self.audiences = None if audience is None else frozenset(audience)
        if self.audiences is not None and not self.audiences:
            raise ConfigurationError("audience must name at least one audience (or be None)")
        self.jwks_url: str | None = None
        if jwks_url is not None:
            self.jwks_url = check_endpoint_url(
                jwks_url, allow_insecure_http=allow_insecure_http, what="jwks_url"
            )
        self.algorithms = check_algorithms(algorithms)
        if leeway < 0 or jwks_refresh_interval < 0 or not jwks_max_age > 0 or not timeout > 0:
            raise ConfigurationError(
                "leeway and jwks_refresh_interval must be >= 0; jwks_max_age and timeout > 0"
            )
        self.leeway = float(leeway)
        self.require_at_jwt = require_at_jwt
        self.jwks_refresh_interval = float(jwks_refresh_interval)
        self.jwks_max_age = float(jwks_max_age)
        self.timeout = float(timeout)
        self._insecure = allow_insecure_http
        self._clock = clock
        self._http = LazySession("JWTVerifier", session)
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")  # monotonic time of the last JWKS fetch attempt
        self._flight: asyncio.Future[KeySet] | None = None

    # ------------------------------------------------------------------ verifying

    async def verify(
        self,
        token: str | Token,
        *,
        dpop_proof: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> Claims:
        """Verify ``token`` and return its claims.

        A DPoP-bound token (``cnf.jkt``, RFC 9449 §6.1) is accepted only with a valid
        proof for this request: pass the ``DPoP`` header as ``dpop_proof`` and the
        request's ``method`` and full ``url`` (see :class:`~tokenfleet.DPoPVerifier`).
        Refuse a bound token sent with the ``Bearer`` scheme yourself, or pass no proof.

        Raises:
            TokenVerificationError: the token is refused; the subclass says why
                (``MalformedToken``, ``DisallowedAlgorithm``, ``UnknownKey``,
                ``InvalidSignature``, ``TokenExpired``, ``TokenNotYetValid``,
                ``InvalidIssuer``, ``InvalidAudience``, and ``DPoPProofError``
                subclasses for DPoP).
            DiscoveryError, TransportError: the JWK Set could not be obtained.
        """
        raw = token.access_token if isinstance(token, Token) else token
        if not isinstance(raw, str):
            raise MalformedToken(f"expected a str or Token, got {type(raw).__name__}")
        parts = split_jws(raw)
        alg, kid = self._check_header(parts.header)
        key = await self._key_for(kid, alg)
        if not key.verify(alg, parts.signing_input, parts.signature):
            raise InvalidSignature(
                f"the token's {alg} signature does not verify with JWKS key {key.kid!r}"
            )
        claims = claims_from(parts)
        check_claims(
            claims,
            issuer=self.issuer,
            audiences=self.audiences,
            now=self._clock(),
            leeway=self.leeway,
        )
        jkt = bound_jkt(claims)
        if jkt is not None or dpop_proof is not None:
            self._check_dpop(raw, jkt, dpop_proof, method, url)
        return claims

    def _check_dpop(
        self, raw: str, jkt: str | None, proof: str | None, method: str | None, url: str | None
    ) -> None:
        if proof is None:
            raise DPoPProofMissing(
                "the token is DPoP-bound (cnf.jkt): it needs a DPoP proof, and the DPoP scheme",
                nonce=self.dpop.nonce if self.dpop.require_nonce else None,
            )
        if method is None or url is None:
            raise ConfigurationError("verify(dpop_proof=...) needs the request's method and url")
        self.dpop.verify(proof, method=method, url=url, access_token=raw, jkt=jkt)

    def _check_header(self, header: dict[str, object]) -> tuple[str, str | None]:
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        # Both are attacker-controlled and end up in messages: keep them short.
        if not isinstance(alg, str) or len(alg) > 16:
            raise MalformedToken("the token header has no short 'alg' string")
        if kid is not None and (not isinstance(kid, str) or len(kid) > 256):
            raise MalformedToken("the token header's 'kid' is not a string of <= 256 chars")
        if "crit" in header:  # RFC 7515 §4.1.11: we understand no extension
            raise MalformedToken("the token header has 'crit' extensions tokenfleet cannot honour")
        if alg.lower() == "none":
            raise DisallowedAlgorithm("the token is unsigned (alg 'none'); refused")
        if alg.upper().startswith("HS"):
            raise DisallowedAlgorithm(
                f"the token says alg {alg!r} (HMAC): a JWKS holds public keys, and an HMAC "
                "keyed with a public key is the algorithm-confusion attack (RFC 8725 §2.1)"
            )
        allowed = self.algorithms or ASYMMETRIC_ALGORITHMS
        if alg not in allowed:
            raise DisallowedAlgorithm(
                f"alg {alg!r} is not allowed; allowed: {', '.join(sorted(allowed))}"
            )
        if self.require_at_jwt and not is_at_jwt(typ if isinstance(typ, str) else None):
            shown = printable(repr(typ), 40)  # unsigned yet: keep it short, as alg and kid
            raise MalformedToken(f"the token's typ is {shown}, not 'at+jwt' (RFC 9068 §4)")
        return alg, kid

    async def _key_for(self, kid: str | None, alg: str) -> VerificationKey:
        keys = await self._current_keys()
        key = keys.select(kid, alg)
        if key is None and self._may_refresh():
            keys = await self._fetch_keys()
            key = keys.select(kid, alg)
        if key is None:
            what = f"kid {kid!r}" if kid is not None else f"no kid (alg {alg})"
            raise UnknownKey(
                f"the JWKS of {self.issuer} has no signing key for {what} (it may have been "
                "rotated out, or the token is not from this issuer)"
            )
        return key

    # ------------------------------------------------------------------ the JWK Set

    async def _current_keys(self) -> KeySet:
        if self._keys is None:
            return await self._fetch_keys()
        if time.monotonic() - self._fetched_at > self.jwks_max_age:
            try:
                return await self._fetch_keys()
            except (TransportError, DiscoveryError) as exc:
                logger.warning(
                    "tokenfleet: could not refresh the JWKS of %s (%s); using the cached keys",
                    self.issuer,
                    exc,
                )
        return self._keys

    def _may_refresh(self) -> bool:
        """An unknown kid refetches at most once per ``jwks_refresh_interval``."""
        in_flight = self._flight is not None
        return in_flight or time.monotonic() - self._fetched_at >= self.jwks_refresh_interval

    async def _fetch_keys(self) -> KeySet:
        """Single flight: every caller awaits the one fetch in progress."""
        if self._flight is None:
            self._fetched_at = time.monotonic()
            flight = asyncio.ensure_future(self._download())
            flight.add_done_callback(self._landed)
            self._flight = flight
        return await asyncio.shield(self._flight)

    def _landed(self, flight: asyncio.Future[KeySet]) -> None:
        self._flight = None
        if not flight.cancelled() and flight.exception() is None:
            self._keys = flight.result()

    async def _download(self) -> KeySet:
        session = self._http.get()
        try:
            async with asyncio.timeout(self.timeout):
                url = self.jwks_url or await self._discover_jwks_url(session)
                status, body = await discovery.get_json(session, url)
        except TimeoutError:
            raise FetchTimeout(f"no JWKS for {self.issuer} within {self.timeout:g} s") from None
        if status != 200:
            raise DiscoveryError(f"the JWKS at {url} answered HTTP {status}")
        keys = parse_jwks(body, url=url, allowed=self.algorithms)
        logger.debug("tokenfleet: fetched the JWKS of %s: %d keys", self.issuer, len(keys.keys))
        return keys

    async def _discover_jwks_url(self, session: aiohttp.ClientSession) -> str:
        metadata = await discovery.fetch_metadata(
            session, self.issuer, allow_insecure_http=self._insecure
        )
        if metadata.jwks_uri is None:
            raise DiscoveryError(
                f"the metadata of {self.issuer} has no jwks_uri; pass jwks_url= explicitly"
            )
        self.jwks_url = metadata.jwks_uri
        return metadata.jwks_uri

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the HTTP session this verifier opened (a session passed in stays open)."""
        flight, self._flight = self._flight, None
        if flight is not None:
            flight.cancel()
        await self._http.aclose()

    def __repr__(self) -> str:
        audiences = None if self.audiences is None else sorted(self.audiences)
        return f"JWTVerifier(issuer={self.issuer!r}, audience={audiences!r})"
