"""tokenfleet: OAuth 2.0 client-credentials tokens for async Python fleets.

Cached, fetched once however many coroutines, processes or hosts ask, and refreshed
ahead of expiry. See https://tokenfleet.readthedocs.io (docs/ in the repository).
"""

from __future__ import annotations

from ._client import ClientCredentials as ClientCredentials
from ._client import Retry as Retry
from ._events import Event as Event
from ._exceptions import ConfigurationError as ConfigurationError
from ._exceptions import FetchTimeout as FetchTimeout
from ._exceptions import FleetCooldown as FleetCooldown
from ._exceptions import InsufficientScope as InsufficientScope
from ._exceptions import InvalidClient as InvalidClient
from ._exceptions import InvalidGrant as InvalidGrant
from ._exceptions import InvalidRequest as InvalidRequest
from ._exceptions import InvalidScope as InvalidScope
from ._exceptions import InvalidTarget as InvalidTarget
from ._exceptions import InvalidTokenResponse as InvalidTokenResponse
from ._exceptions import OAuthError as OAuthError
from ._exceptions import RateLimited as RateLimited
from ._exceptions import ServerError as ServerError
from ._exceptions import StoreError as StoreError
from ._exceptions import TokenEndpointError as TokenEndpointError
from ._exceptions import TokenFleetError as TokenFleetError
from ._exceptions import TransportError as TransportError
from ._exceptions import UnauthorizedClient as UnauthorizedClient
from ._exceptions import UnsupportedGrantType as UnsupportedGrantType
from ._manager import TokenManager as TokenManager
from ._models import Secret as Secret
from ._models import Token as Token
from ._source import KeyedTokenSource as KeyedTokenSource
from ._source import TokenSource as TokenSource
from ._stats import Stats as Stats
from .stores import FileStore as FileStore
from .stores import FleetStore as FleetStore
from .stores import MemoryStore as MemoryStore
from .stores import RedisStore as RedisStore
from .stores import TokenStore as TokenStore
from .stores import store_from_url as store_from_url

__version__ = "0.1.0"

__all__ = [
    "ClientCredentials",
    "ConfigurationError",
    "Event",
    "FetchTimeout",
    "FileStore",
    "FleetCooldown",
    "FleetStore",
    "InsufficientScope",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "InvalidTokenResponse",
    "KeyedTokenSource",
    "MemoryStore",
    "OAuthError",
    "RateLimited",
    "RedisStore",
    "Retry",
    "Secret",
    "ServerError",
    "Stats",
    "StoreError",
    "Token",
    "TokenEndpointError",
    "TokenFleetError",
    "TokenManager",
    "TokenSource",
    "TokenStore",
    "TransportError",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "__version__",
    "store_from_url",
]
