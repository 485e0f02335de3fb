"""tokenfleet: OAuth 2.0 client-credentials tokens for async Python fleets.

Cached, fetched once however many coroutines, processes or hosts ask, and refreshed
ahead of expiry. See https://tokenfleet.readthedocs.io (docs/ in the repository).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._check.result import CheckReport as CheckReport
from ._check.result import CheckResult as CheckResult
from ._check.run import check as check
from ._client.credentials import ClientCredentials as ClientCredentials
from ._client.discovery import ServerMetadata as ServerMetadata
from ._client.retry import Retry as Retry
from ._client.sources import AssertionFile as AssertionFile
from ._client.sources import KeyFile as KeyFile
from ._client.sources import SecretFile as SecretFile
from ._exceptions import ConfigurationError as ConfigurationError
from ._exceptions import CredentialError as CredentialError
from ._exceptions import DiscoveryError as DiscoveryError
from ._exceptions import DPoPDowngrade as DPoPDowngrade
from ._exceptions import DPoPKeyNotSealed as DPoPKeyNotSealed
from ._exceptions import EndpointNotFound as EndpointNotFound
from ._exceptions import FetchTimeout as FetchTimeout
from ._exceptions import FleetCooldown as FleetCooldown
from ._exceptions import InsufficientScope as InsufficientScope
from ._exceptions import InvalidClient as InvalidClient
from ._exceptions import InvalidDPoPProof as InvalidDPoPProof
from ._exceptions import InvalidGrant as InvalidGrant
from ._exceptions import InvalidRequest as InvalidRequest
from ._exceptions import InvalidScope as InvalidScope
from ._exceptions import InvalidTarget as InvalidTarget
from ._exceptions import InvalidTokenResponse as InvalidTokenResponse
from ._exceptions import IssuerMismatch as IssuerMismatch
from ._exceptions import OAuthError as OAuthError
from ._exceptions import RateLimited as RateLimited
from ._exceptions import ServerError as ServerError
from ._exceptions import StoreError as StoreError
from ._exceptions import TokenEndpointError as TokenEndpointError
from ._exceptions import TokenFleetError as TokenFleetError
from ._exceptions import TransportError as TransportError
from ._exceptions import UnauthorizedClient as UnauthorizedClient
from ._exceptions import UnsupportedAuthMethod as UnsupportedAuthMethod
from ._exceptions import UnsupportedGrantType as UnsupportedGrantType
from ._exceptions import UseDPoPNonce as UseDPoPNonce
from ._jwt.claims import Claims as Claims
from ._jwt.dpop import DPoPVerifier as DPoPVerifier
from ._jwt.dpop_key import DPoPKey as DPoPKey
from ._jwt.errors import DisallowedAlgorithm as DisallowedAlgorithm
from ._jwt.errors import DPoPKeyMismatch as DPoPKeyMismatch
from ._jwt.errors import DPoPMethodMismatch as DPoPMethodMismatch
from ._jwt.errors import DPoPNonceRequired as DPoPNonceRequired
from ._jwt.errors import DPoPProofError as DPoPProofError
from ._jwt.errors import DPoPProofExpired as DPoPProofExpired
from ._jwt.errors import DPoPProofMissing as DPoPProofMissing
from ._jwt.errors import DPoPProofReplayed as DPoPProofReplayed
from ._jwt.errors import DPoPSignatureInvalid as DPoPSignatureInvalid
from ._jwt.errors import DPoPTokenHashMismatch as DPoPTokenHashMismatch
from ._jwt.errors import DPoPUrlMismatch as DPoPUrlMismatch
from ._jwt.errors import InvalidAudience as InvalidAudience
from ._jwt.errors import InvalidIssuer as InvalidIssuer
from ._jwt.errors import InvalidSignature as InvalidSignature
from ._jwt.errors import MalformedDPoPProof as MalformedDPoPProof
from ._jwt.errors import MalformedToken as MalformedToken
from ._jwt.errors import TokenExpired as TokenExpired
from ._jwt.errors import TokenNotYetValid as TokenNotYetValid
from ._jwt.errors import TokenVerificationError as TokenVerificationError
from ._jwt.errors import UnknownKey as UnknownKey
from ._jwt.verifier import JWTVerifier as JWTVerifier
from ._manager.events import Event as Event
from ._manager.manager import TokenManager as TokenManager
from ._manager.policy import Refresh as Refresh
from ._manager.stats import Stats as Stats
from ._models import Secret as Secret
from ._models import Token as Token
from ._source import DescribedSource as DescribedSource
from ._source import KeyedTokenSource as KeyedTokenSource
from ._source import RotatingSource as RotatingSource
from ._source import SourceDescription as SourceDescription
from ._source import TokenSource as TokenSource
from ._util.public import publish
from ._version import __version__ as __version__
from .stores import AesGcmCipher as AesGcmCipher
from .stores import FileStore as FileStore
from .stores import FleetStore as FleetStore
from .stores import MemoryStore as MemoryStore
from .stores import TokenStore as TokenStore
from .stores import store_from_url as store_from_url

if TYPE_CHECKING:
    from . import aiohttp as aiohttp
    from . import httpx as httpx
    from . import testing as testing
    from .stores.redis import RedisStore as RedisStore

# Integration modules reachable as attributes after a bare ``import tokenfleet``, imported
# on first access so that ``import tokenfleet`` never needs httpx (an optional extra);
# without it, ``tokenfleet.httpx`` raises the ImportError that names the extra.
_LAZY_MODULES = frozenset({"aiohttp", "httpx", "testing"})


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name == "RedisStore":  # redis-py is the optional extra tokenfleet[redis]
        from .stores.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module 'tokenfleet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_MODULES, "RedisStore"})


__all__ = [
    "AesGcmCipher",
    "AssertionFile",
    "CheckReport",
    "CheckResult",
    "Claims",
    "ClientCredentials",
    "ConfigurationError",
    "CredentialError",
    "DPoPDowngrade",
    "DPoPKey",
    "DPoPKeyMismatch",
    "DPoPKeyNotSealed",
    "DPoPMethodMismatch",
    "DPoPNonceRequired",
    "DPoPProofError",
    "DPoPProofExpired",
    "DPoPProofMissing",
    "DPoPProofReplayed",
    "DPoPSignatureInvalid",
    "DPoPTokenHashMismatch",
    "DPoPUrlMismatch",
    "DPoPVerifier",
    "DescribedSource",
    "DisallowedAlgorithm",
    "DiscoveryError",
    "EndpointNotFound",
    "Event",
    "FetchTimeout",
    "FileStore",
    "FleetCooldown",
    "FleetStore",
    "InsufficientScope",
    "InvalidAudience",
    "InvalidClient",
    "InvalidDPoPProof",
    "InvalidGrant",
    "InvalidIssuer",
    "InvalidRequest",
    "InvalidScope",
    "InvalidSignature",
    "InvalidTarget",
    "InvalidTokenResponse",
    "IssuerMismatch",
    "JWTVerifier",
    "KeyFile",
    "KeyedTokenSource",
    "MalformedDPoPProof",
    "MalformedToken",
    "MemoryStore",
    "OAuthError",
    "RateLimited",
    "RedisStore",
    "Refresh",
    "Retry",
    "RotatingSource",
    "Secret",
    "SecretFile",
    "ServerError",
    "ServerMetadata",
    "SourceDescription",
    "Stats",
    "StoreError",
    "Token",
    "TokenEndpointError",
    "TokenExpired",
    "TokenFleetError",
    "TokenManager",
    "TokenNotYetValid",
    "TokenSource",
    "TokenStore",
    "TokenVerificationError",
    "TransportError",
    "UnauthorizedClient",
    "UnknownKey",
    "UnsupportedAuthMethod",
    "UnsupportedGrantType",
    "UseDPoPNonce",
    "__version__",
    "check",
    "store_from_url",
]

publish(globals(), __all__, __name__)
