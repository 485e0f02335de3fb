"""JWT access tokens: reading claims (no verification), JWKS, ``JWTVerifier``.

``claims`` sits below ``_models`` (a ``Token`` reads its own claims); ``jwks`` and
``verifier`` sit beside the client layer. This package re-exports nothing.
"""
