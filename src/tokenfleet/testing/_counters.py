"""Request counters of the dev authorization server, so a test can say "N callers, 1 request"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class RequestRecord:
    """One POST to the token endpoint, for timing assertions.

    Attributes:
        arrival: ``time.monotonic()`` when the request arrived.
        client_id: the client id the request claimed (unverified), if any.
        status: the HTTP status answered; None while in flight, 0 if the connection was
            dropped.
    """

    arrival: float
    client_id: str | None
    status: int | None = None


@dataclass(slots=True)
class Counters:
    """Counts written by the server's loop; a reset replaces the whole object."""

    token_requests: int = 0
    issued_tokens: int = 0
    resource_requests: int = 0
    jwks_requests: int = 0
    metadata_requests: int = 0
    per_client_requests: dict[str | None, int] = field(default_factory=dict)
    per_client_issued: dict[str, int] = field(default_factory=dict)

    def count_request(self, client_id: str | None) -> None:
        """Count a token request claiming to come from ``client_id``."""
        self.token_requests += 1
        self.per_client_requests[client_id] = self.per_client_requests.get(client_id, 0) + 1

    def count_issued(self, client_id: str) -> None:
        """Count a token issued to ``client_id``."""
        self.issued_tokens += 1
        self.per_client_issued[client_id] = self.per_client_issued.get(client_id, 0) + 1

    def requests(self, client_id: str | None) -> int:
        """Token requests, from one client or (None) from all."""
        if client_id is None:
            return self.token_requests
        return self.per_client_requests.get(client_id, 0)

    def issued(self, client_id: str | None) -> int:
        """Tokens issued, to one client or (None) to all."""
        if client_id is None:
            return self.issued_tokens
        return self.per_client_issued.get(client_id, 0)

    def as_json(self) -> dict[str, Any]:
        """The ``/stats`` document."""
        known = set(self.per_client_requests) | set(self.per_client_issued)
        per_client = {
            client_id: {
                "token_requests": self.per_client_requests.get(client_id, 0),
                "issued_tokens": self.per_client_issued.get(client_id, 0),
            }
            for client_id in sorted(c for c in known if c is not None)
        }
        return {
            "token_requests": self.token_requests,
            "issued_tokens": self.issued_tokens,
            "per_client": per_client,
            "resource_requests": self.resource_requests,
            "jwks_requests": self.jwks_requests,
            "metadata_requests": self.metadata_requests,
        }
