"""DPoP (RFC 9449) on the dev server: proof checks, nonces, replay memory.

Written apart from tokenfleet's own ``DPoPVerifier`` (pyjwt does the JOSE work here), so
the client's proofs are checked by a second, independent reading of the RFC.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import jwt

_ALGS = ["ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256"]
_WINDOW = 60.0  # seconds a proof's iat may lie in the past (RFC 9449 §11.1)
_SKEW = 5.0  # and in the future
_REPLAY_LIMIT = 100_000
_THUMB = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}


class DPoPProblem(Exception):
    """A proof the server refuses: ``error`` is the RFC 9449 code to answer with."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK."""
    members = _THUMB[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def htu_of(url: str) -> str:
    """Scheme, host, non-default port and path: what ``htu`` is compared on (§4.3)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(scheme)
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{scheme}://{host}{port}{parts.path or '/'}"


class Nonces:
    """Server nonces (RFC 9449 §8-9): the current one and the one before are accepted."""

    def __init__(self) -> None:
        self.current = secrets.token_urlsafe(16)
        self.previous: str | None = None

    def rotate(self) -> None:
        self.previous, self.current = self.current, secrets.token_urlsafe(16)

    def accepts(self, nonce: object) -> bool:
        return isinstance(nonce, str) and nonce in (self.current, self.previous)


class ProofChecker:
    """Checks DPoP proofs as RFC 9449 §4.3 lists, with a bounded jti replay memory."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check(
        self,
        proof: str | None,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonces: Nonces | None = None,
    ) -> str:
        """The proof key's thumbprint (``jkt``) if ``proof`` is valid for this request.

        Raises:
            DPoPProblem: ``invalid_dpop_proof`` or ``use_dpop_nonce``.
        """
        if not proof or "," in proof:
            raise DPoPProblem("invalid_dpop_proof", "exactly one DPoP header is required")
        header, claims = self._decode(proof)
        if claims.get("htm") != method:
            raise DPoPProblem("invalid_dpop_proof", "htm does not match the request method")
        if not isinstance(claims.get("htu"), str) or htu_of(claims["htu"]) != htu_of(url):
            raise DPoPProblem("invalid_dpop_proof", "htu does not match the request URL")
        iat, now = claims.get("iat"), self._clock()
        if not isinstance(iat, (int, float)) or not now - _WINDOW <= iat <= now + _SKEW:
            raise DPoPProblem("invalid_dpop_proof", "iat is outside the accepted window")
        if access_token is not None:
            ath = b64url(hashlib.sha256(access_token.encode()).digest())
            if claims.get("ath") != ath:
                raise DPoPProblem("invalid_dpop_proof", "ath does not match the access token")
        if nonces is not None and not nonces.accepts(claims.get("nonce")):
            raise DPoPProblem("use_dpop_nonce", "a DPoP nonce is required")
        self._remember(claims.get("jti"), now)
        return thumbprint(header["jwk"])

    def _decode(self, proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(proof)
            jwk = header.get("jwk")
            if header.get("typ") != "dpop+jwt" or header.get("alg") not in _ALGS:
                raise DPoPProblem("invalid_dpop_proof", "typ must be dpop+jwt, alg asymmetric")
            if not isinstance(jwk, dict) or any(k in jwk for k in ("d", "p", "q", "k")):
                raise DPoPProblem("invalid_dpop_proof", "jwk must be a public key")
            key = jwt.PyJWK(jwk, header["alg"]).key
            claims = jwt.decode(
                proof, key, algorithms=[header["alg"]], options={"verify_aud": False}
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):
            raise DPoPProblem("invalid_dpop_proof", "the proof does not verify") from None
        if not all(isinstance(claims.get(c), (str, int)) for c in ("jti", "htm", "htu", "iat")):
            raise DPoPProblem("invalid_dpop_proof", "jti, htm, htu and iat are required")
        return header, claims

    def _remember(self, jti: object, now: float) -> None:
        if not isinstance(jti, str) or len(jti) > 256:
            raise DPoPProblem("invalid_dpop_proof", "jti must be a short string")
        if jti in self._seen:
            raise DPoPProblem("invalid_dpop_proof", "the proof was already used (jti replay)")
        self._seen[jti] = now
        while self._seen and (
            len(self._seen) > _REPLAY_LIMIT or next(iter(self._seen.values())) < now - _WINDOW
        ):
            self._seen.popitem(last=False)


class DevDPoP:
    """The dev server's DPoP settings and counters (``DevAuthServer.dpop``).

    Attributes:
        bind_tokens: True (default) answers a token request that has a valid proof with a
            DPoP-bound token (``cnf.jkt``, ``token_type`` DPoP); False ignores the proof
            and issues a Bearer token, as a server without DPoP does.
        nonce_at_token: demand a server nonce in token request proofs (RFC 9449 §8).
        nonce_at_resource: demand one in resource request proofs (§9).
        token_nonce_challenges: ``use_dpop_nonce`` answers of the token endpoint.
        resource_nonce_challenges: ``use_dpop_nonce`` answers of the resource.
        refused: proofs refused for another reason, by error description.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.bind_tokens = True
        self.nonce_at_token = False
        self.nonce_at_resource = False
        self.token_nonce_challenges = 0
        self.resource_nonce_challenges = 0
        self.refused: dict[str, int] = {}
        self.nonces = Nonces()
        self.checker = ProofChecker(clock)

    def rotate_nonce(self) -> None:
        """Issue a new nonce; the previous one stays accepted until the next rotation."""
        self.nonces.rotate()

    @property
    def nonce(self) -> str:
        """The current server nonce."""
        return self.nonces.current

    def reset(self) -> None:
        """Zero the counters."""
        self.token_nonce_challenges = self.resource_nonce_challenges = 0
        self.refused = {}

    def nonce_header(self, at_token: bool) -> dict[str, str]:
        """``DPoP-Nonce`` for a response, when nonces are demanded there (§8.2)."""
        demanded = self.nonce_at_token if at_token else self.nonce_at_resource
        return {"DPoP-Nonce": self.nonces.current} if demanded else {}

    def token_request(self, proofs: list[str], token_url: str) -> str | None:
        """The ``jkt`` to bind the token to, or None for a Bearer token.

        Raises:
            DPoPProblem: the proof is refused.
        """
        if not proofs or not self.bind_tokens:
            return None
        nonces = self.nonces if self.nonce_at_token else None
        return self._check(proofs, "POST", token_url, None, nonces, at_token=True)

    def resource_request(
        self, proofs: list[str], method: str, url: str, access_token: str, jkt: str
    ) -> None:
        """Check a resource request's proof against the token it came with.

        Raises:
            DPoPProblem: the proof is refused (``invalid_token`` for a key mismatch).
        """
        nonces = self.nonces if self.nonce_at_resource else None
        found = self._check(proofs, method, url, access_token, nonces, at_token=False)
        if found != jkt:
            self._count("the proof key is not the token's cnf.jkt")
            raise DPoPProblem("invalid_token", "the token is bound to another key")

    def _check(
        self,
        proofs: list[str],
        method: str,
        url: str,
        access_token: str | None,
        nonces: Nonces | None,
        *,
        at_token: bool,
    ) -> str:
        proof = proofs[0] if len(proofs) == 1 else None
        try:
            return self.checker.check(proof, method, url, access_token=access_token, nonces=nonces)
        except DPoPProblem as problem:
            if problem.error == "use_dpop_nonce":
                if at_token:
                    self.token_nonce_challenges += 1
                else:
                    self.resource_nonce_challenges += 1
            else:
                self._count(problem.description)
            raise

    def _count(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
