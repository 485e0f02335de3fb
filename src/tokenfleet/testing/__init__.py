"""A real, small OAuth 2.0 authorization server for tests and demos.

```python
from tokenfleet.testing import DevAuthServer, Fault

async with DevAuthServer(token_lifetime=60) as idp:
    idp.inject_fault(Fault(status=503, retry_after=1), count=2)
    ...  # point a client at idp.token_url with idp.client_id / idp.client_secret
```

The pytest plugin (``tokenfleet.testing.pytest_plugin``) provides a ``tokenfleet_server``
fixture that runs one in a background thread.
"""

from .._util.public import publish
from ._counters import RequestRecord as RequestRecord
from ._faults import Fault as Fault
from ._federation import WorkloadIssuer as WorkloadIssuer
from ._kubelet import ProjectedVolume as ProjectedVolume
from ._kubelet import TokenRotator as TokenRotator
from ._pki import TestPKI as TestPKI
from ._pki import make_test_pki as make_test_pki
from ._server import DevAuthServer as DevAuthServer
from ._thread import ServerThread as ServerThread

__all__ = [
    "DevAuthServer",
    "Fault",
    "ProjectedVolume",
    "RequestRecord",
    "ServerThread",
    "TestPKI",
    "TokenRotator",
    "WorkloadIssuer",
    "make_test_pki",
]

publish(globals(), __all__, __name__)
