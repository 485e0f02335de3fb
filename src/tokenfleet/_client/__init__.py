"""The source layer: ``ClientCredentials`` and what it needs to make one token request.

Client authentication methods, discovery, the HTTP session and the sans-I/O request and
response code. Nothing here caches or coordinates: that is ``_manager``'s job. Modules
are imported directly (``from ._client.credentials import ...``); this package re-exports
nothing, so importing one of them does not import the others.
"""
