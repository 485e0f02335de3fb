"""Client and store configuration from flags and ``TOKENFLEET_*`` environment variables.

The reading itself is the library's (``tokenfleet._client.env``, as
``ClientCredentials.from_env`` does); here are the flags. A flag wins over its variable.
The client secret is read only from the environment or from a file: a flag's value would
show in ``ps`` and in shell history.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from .._client.credentials import ClientCredentials
from .._client.env import (
    AUTH_METHODS,
    VARIABLES,
    Settings,
    client_kwargs,
    read_settings,
    ssl_context_of,
)
from .._client.retry import Retry

__all__ = [
    "Settings",
    "add_client_options",
    "make_client",
    "settings_from",
    "ssl_context_of",
]

SECRET_ENV = "TOKENFLEET_CLIENT_SECRET"  # noqa: S105 - a variable name


class _RefuseSecretFlag(argparse.Action):
    """``--client-secret VALUE`` is refused without echoing VALUE."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        parser.error(
            "--client-secret is not accepted (its value would show in `ps` and shell "
            f"history); set {SECRET_ENV} or use --client-secret-file PATH"
        )


def add_client_options(parser: argparse.ArgumentParser, *, store: bool = True) -> None:
    """The options every command that talks to a token endpoint shares."""
    group = parser.add_argument_group("client (flags override TOKENFLEET_* variables)")
    add = group.add_argument
    add("--token-url", metavar="URL", help="token endpoint [TOKENFLEET_TOKEN_URL]")
    add(
        "--issuer",
        metavar="URL",
        help="issuer, to discover the token endpoint (RFC 8414) [TOKENFLEET_ISSUER]",
    )
    add("--client-id", metavar="ID", help="client id [TOKENFLEET_CLIENT_ID]")
    add(
        "--client-secret-file",
        metavar="PATH",
        help="file holding the client secret "
        f"[TOKENFLEET_CLIENT_SECRET_FILE]; or set {SECRET_ENV}",
    )
    add("--client-secret", nargs="?", action=_RefuseSecretFlag, help=argparse.SUPPRESS)
    add(
        "--auth-method",
        choices=AUTH_METHODS,
        metavar="METHOD",
        help=f"one of {', '.join(AUTH_METHODS)} (default: client_secret_basic, or "
        "private_key_jwt with a private key) [TOKENFLEET_AUTH_METHOD]",
    )
    add(
        "--scope",
        dest="scopes",
        action="append",
        metavar="SCOPE",
        help="scope to request; repeat, or space-separate [TOKENFLEET_SCOPES]",
    )
    add("--audience", help="audience parameter [TOKENFLEET_AUDIENCE]")
    add(
        "--resource",
        action="append",
        metavar="URI",
        help="RFC 8707 resource indicator; repeatable [TOKENFLEET_RESOURCE]",
    )
    add(
        "--private-key-file",
        metavar="PATH",
        help="PEM key for private_key_jwt [TOKENFLEET_PRIVATE_KEY_FILE]",
    )
    add(
        "--certificate-file",
        metavar="PATH",
        help="PEM certificate of that key: sent as its x5t#S256 thumbprint, as Microsoft "
        "Entra ID needs [TOKENFLEET_CERTIFICATE_FILE]",
    )
    add("--ca-file", metavar="PATH", help="CA bundle to trust for https [TOKENFLEET_CA_FILE]")
    add(
        "--cert-file",
        metavar="PATH",
        help="client certificate for tls_client_auth [TOKENFLEET_CERT_FILE]",
    )
    add(
        "--key-file",
        metavar="PATH",
        help="its private key, if not in --cert-file [TOKENFLEET_KEY_FILE]",
    )
    add(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="total seconds for a token request, retries included (default 10)",
    )
    add(
        "--allow-insecure-http",
        action="store_true",
        help="allow a plain-http token URL on a host other than loopback (test setups only)",
    )
    if store:
        add(
            "--store",
            metavar="URL",
            help="token cache shared across runs and processes: "
            "file:///path, file:// (~/.cache/tokenfleet), redis://host:6379/0 "
            "[TOKENFLEET_STORE]",
        )


# setting -> the flag that sets it, for messages ("set TOKENFLEET_CLIENT_ID or pass --client-id")
FLAGS: dict[str, str] = {
    "token_url": "--token-url URL",
    "issuer": "--issuer URL",
    "client_id": "--client-id ID",
    "client_secret_file": "--client-secret-file PATH",
    "auth_method": "--auth-method METHOD",
    "private_key_file": "--private-key-file PATH",
    "certificate_file": "--certificate-file PATH",
    "cert_file": "--cert-file PATH",
    "store": "--store URL",
}


def settings_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """Flags over the environment (``os.environ`` by default): the library's own reading
    (``ClientCredentials.from_env``) with the flags as overrides."""
    overrides = {dest: getattr(args, dest, None) for dest in VARIABLES}
    overrides["timeout"] = getattr(args, "timeout", 10.0)
    overrides["allow_insecure_http"] = getattr(args, "allow_insecure_http", False)
    return read_settings(env, overrides=overrides, flags=FLAGS)


def make_client(settings: Settings, *, retry: Retry | None = None) -> ClientCredentials:
    """A ``ClientCredentials`` for the token URL, or for the issuer (discovered lazily).

    Raises:
        ConfigurationError: settings are missing (every one is named) or invalid.
    """
    return ClientCredentials(**client_kwargs(settings), retry=retry)
