"""Client and store configuration from flags and ``TOKENFLEET_*`` environment variables.

A flag wins over its environment variable. The client secret is read only from the
environment or from a file: a flag's value would show in ``ps`` and in shell history.
"""

from __future__ import annotations

import argparse
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from .._client.auth import AuthMethod
from .._client.credentials import ClientCredentials, Retry
from .._exceptions import ConfigurationError
from .._models import Secret

__all__ = ["ENV", "Settings", "add_client_options", "make_client", "settings_from"]

AUTH_METHODS: tuple[str, ...] = get_args(AuthMethod)
_SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")

# option dest -> environment variable
ENV: dict[str, str] = {
    "token_url": "TOKENFLEET_TOKEN_URL",
    "issuer": "TOKENFLEET_ISSUER",
    "client_id": "TOKENFLEET_CLIENT_ID",
    "client_secret_file": "TOKENFLEET_CLIENT_SECRET_FILE",
    "auth_method": "TOKENFLEET_AUTH_METHOD",
    "scopes": "TOKENFLEET_SCOPES",
    "audience": "TOKENFLEET_AUDIENCE",
    "resource": "TOKENFLEET_RESOURCE",
    "private_key_file": "TOKENFLEET_PRIVATE_KEY_FILE",
    "ca_file": "TOKENFLEET_CA_FILE",
    "cert_file": "TOKENFLEET_CERT_FILE",
    "key_file": "TOKENFLEET_KEY_FILE",
    "store": "TOKENFLEET_STORE",
}
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
    if store:
        add(
            "--store",
            metavar="URL",
            help="token cache shared across runs and processes: "
            "file:///path, file:// (~/.cache/tokenfleet), redis://host:6379/0 "
            "[TOKENFLEET_STORE]",
        )


@dataclass(frozen=True)
class Settings:
    """Everything needed to build a client; the secret stays wrapped in ``Secret``."""

    token_url: str | None
    issuer: str | None
    client_id: str | None
    secret: Secret | None
    auth_method: str | None
    scopes: tuple[str, ...]
    audience: str | None
    resources: tuple[str, ...]
    private_key: Secret | None
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    store: str | None
    timeout: float


def _pick(args: argparse.Namespace, env: Mapping[str, str], dest: str) -> Any:
    value = getattr(args, dest, None)
    if value is not None:
        return value
    return env.get(ENV[dest]) or None


def _words(values: list[str] | str | None) -> tuple[str, ...]:
    """Scopes or resources from repeated flags or one string: spaces and commas split."""
    if values is None:
        return ()
    items = [values] if isinstance(values, str) else values
    return tuple(word for item in items for word in item.replace(",", " ").split())


def _read_file(path: str, what: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigurationError(f"cannot read the {what} file {path!r}: {reason}") from None


def _secret(args: argparse.Namespace, env: Mapping[str, str]) -> Secret | None:
    path = _pick(args, env, "client_secret_file")
    if path is not None:
        value = _read_file(path, "client secret").rstrip("\r\n")
        if not value:
            raise ConfigurationError(f"the client secret file {path!r} is empty")
        return Secret(value)
    from_env = env.get(SECRET_ENV)
    return Secret(from_env) if from_env else None


def settings_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """Merge flags and environment (``os.environ`` by default); read secret and key files."""
    env = os.environ if env is None else env
    key_path = _pick(args, env, "private_key_file")
    return Settings(
        token_url=_pick(args, env, "token_url"),
        issuer=_pick(args, env, "issuer"),
        client_id=_pick(args, env, "client_id"),
        secret=_secret(args, env),
        auth_method=_pick(args, env, "auth_method"),
        scopes=_words(_pick(args, env, "scopes")),
        audience=_pick(args, env, "audience"),
        resources=_words(_pick(args, env, "resource")),
        private_key=Secret(_read_file(key_path, "private key")) if key_path else None,
        ca_file=_pick(args, env, "ca_file"),
        cert_file=_pick(args, env, "cert_file"),
        key_file=_pick(args, env, "key_file"),
        store=_pick(args, env, "store"),
        timeout=float(getattr(args, "timeout", 10.0)),
    )


def auth_method_of(settings: Settings) -> str:
    """The configured method, or the default for the credentials at hand."""
    if settings.auth_method:
        if settings.auth_method not in AUTH_METHODS:
            raise ConfigurationError(
                f"unknown auth method {settings.auth_method!r}; use one of "
                + ", ".join(AUTH_METHODS)
            )
        return settings.auth_method
    return "private_key_jwt" if settings.private_key else "client_secret_basic"


def ssl_context_of(settings: Settings) -> ssl.SSLContext | None:
    """A TLS context when a CA bundle or a client certificate is configured."""
    if not (settings.ca_file or settings.cert_file):
        return None
    try:
        context = ssl.create_default_context(cafile=settings.ca_file)
        if settings.cert_file:
            context.load_cert_chain(settings.cert_file, settings.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load the TLS files: {exc}") from None
    return context


def _check_credentials(settings: Settings, method: str) -> None:
    if not settings.client_id:
        raise ConfigurationError("no client id: set TOKENFLEET_CLIENT_ID or pass --client-id")
    if method in _SECRET_METHODS and settings.secret is None:
        raise ConfigurationError(
            f"no client secret for {method}: set {SECRET_ENV} or "
            "TOKENFLEET_CLIENT_SECRET_FILE, or pass --client-secret-file PATH"
        )
    if method == "private_key_jwt" and settings.private_key is None:
        raise ConfigurationError(
            "no private key for private_key_jwt: set TOKENFLEET_PRIVATE_KEY_FILE or pass "
            "--private-key-file PATH"
        )


def make_client(settings: Settings, *, retry: Retry | None = None) -> ClientCredentials:
    """A ``ClientCredentials`` for the token URL, or for the issuer (discovered lazily)."""
    if not (settings.token_url or settings.issuer):
        raise ConfigurationError(
            "no token endpoint: set TOKENFLEET_TOKEN_URL (or TOKENFLEET_ISSUER to discover "
            "it), or pass --token-url URL"
        )
    method = auth_method_of(settings)
    _check_credentials(settings, method)
    assert settings.client_id is not None
    return ClientCredentials(
        settings.token_url,
        issuer=settings.issuer,
        client_id=settings.client_id,
        client_secret=settings.secret if method in _SECRET_METHODS else None,
        auth_method=method,  # type: ignore[arg-type]  # checked by auth_method_of
        scopes=settings.scopes or None,
        audience=settings.audience,
        resource=list(settings.resources) or None,
        private_key=settings.private_key if method == "private_key_jwt" else None,
        ssl_context=ssl_context_of(settings),
        retry=retry,
        timeout=settings.timeout,
    )
