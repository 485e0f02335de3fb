"""The errors of JWT and DPoP proof verification: the ``TokenVerificationError`` subtree
of the tree drawn in ``_exceptions.py`` (exported from ``tokenfleet`` like the rest)."""

from __future__ import annotations

from .._exceptions import TokenFleetError

__all__ = [
    "DPoPKeyMismatch",
    "DPoPMethodMismatch",
    "DPoPNonceRequired",
    "DPoPProofError",
    "DPoPProofExpired",
    "DPoPProofMissing",
    "DPoPProofReplayed",
    "DPoPSignatureInvalid",
    "DPoPTokenHashMismatch",
    "DPoPUrlMismatch",
    "DisallowedAlgorithm",
    "InvalidAudience",
    "InvalidIssuer",
    "InvalidSignature",
    "MalformedDPoPProof",
    "MalformedToken",
    "TokenExpired",
    "TokenNotYetValid",
    "TokenVerificationError",
    "UnknownKey",
]


class TokenVerificationError(TokenFleetError):
    """``JWTVerifier`` refused a token. Catch this one to answer HTTP 401.

    The message says why, and never contains the token.
    """


class MalformedToken(TokenVerificationError):
    """Not a JWS compact JWT, or a header or claim is missing or of the wrong type."""


class DisallowedAlgorithm(TokenVerificationError):
    """The ``alg`` is ``none``, HMAC, outside the allow-list, or does not fit the key."""


class UnknownKey(TokenVerificationError):
    """The JWK Set has no signing key for the token's ``kid``, even after a refresh."""


class InvalidSignature(TokenVerificationError):
    """The signature does not verify with the issuer's key."""


class TokenExpired(TokenVerificationError):
    """The ``exp`` claim is in the past, beyond the leeway."""


class TokenNotYetValid(TokenVerificationError):
    """The ``nbf`` claim is in the future, beyond the leeway."""


class InvalidIssuer(TokenVerificationError):
    """The ``iss`` claim is missing or is not the expected issuer."""


class InvalidAudience(TokenVerificationError):
    """The ``aud`` claim is missing or names none of the expected audiences."""


class DPoPProofError(TokenVerificationError):
    """A DPoP proof was refused (RFC 9449 §4.3, §7.1). Answer 401 with
    ``WWW-Authenticate: DPoP error="invalid_dpop_proof"`` (``error`` says which).

    Attributes:
        error: the RFC 9449 §7.1 error code for the challenge.
        nonce: a fresh nonce to send as ``DPoP-Nonce``, when the verifier uses nonces.
    """

    error = "invalid_dpop_proof"

    def __init__(self, message: str, *, nonce: str | None = None) -> None:
        super().__init__(message)
        self.nonce = nonce


class DPoPProofMissing(DPoPProofError):
    """A DPoP-bound token (``cnf.jkt``) came without a proof, or with the Bearer scheme."""

    error = "invalid_token"


class MalformedDPoPProof(DPoPProofError):
    """Not a ``dpop+jwt`` compact JWS, a bad or private ``jwk``, or a missing claim."""


class DPoPSignatureInvalid(DPoPProofError):
    """The proof's signature does not verify with the ``jwk`` in its header."""


class DPoPMethodMismatch(DPoPProofError):
    """The proof's ``htm`` is not the request's HTTP method."""


class DPoPUrlMismatch(DPoPProofError):
    """The proof's ``htu`` is not the request's URL (query and fragment aside)."""


class DPoPProofExpired(DPoPProofError):
    """The proof's ``iat`` is outside the accepted window (too old, or in the future)."""


class DPoPProofReplayed(DPoPProofError):
    """The proof's ``jti`` was already used within the window: a replayed proof."""


class DPoPTokenHashMismatch(DPoPProofError):
    """The proof's ``ath`` is missing or is not the hash of the presented access token."""


class DPoPKeyMismatch(DPoPProofError):
    """The proof was signed by a key other than the one the token is bound to
    (``cnf.jkt``): typically a token used without its key, i.e. stolen."""

    error = "invalid_token"


class DPoPNonceRequired(DPoPProofError):
    """The proof lacks the server's current nonce; send ``nonce`` as ``DPoP-Nonce`` with
    ``error="use_dpop_nonce"`` (RFC 9449 §9)."""

    error = "use_dpop_nonce"
