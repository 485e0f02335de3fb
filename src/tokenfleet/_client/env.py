"""Client settings from ``TOKENFLEET_*`` environment variables: one reading for the library
(``ClientCredentials.from_env``, ``TokenManager.from_env``) and the CLI.

The CLI lays its flags over the same settings (``overrides``); a flag wins over its
variable. The client secret is read only from the environment or from a file.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from .._exceptions import ConfigurationError
from .._models import Secret
from .auth import AuthMethod
from .sources import KeyFile, SecretFile

__all__ = [
    "AUTH_METHODS",
    "VARIABLES",
    "Settings",
    "client_kwargs",
    "missing_settings",
    "read_settings",
    "ssl_context_of",
]

AUTH_METHODS: tuple[str, ...] = get_args(AuthMethod)
SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")

# setting -> variable name after the prefix (TOKENFLEET_ by default)
VARIABLES: dict[str, str] = {
    "token_url": "TOKEN_URL",
    "issuer": "ISSUER",
    "client_id": "CLIENT_ID",
    "client_secret": "CLIENT_SECRET",
    "client_secret_file": "CLIENT_SECRET_FILE",
    "auth_method": "AUTH_METHOD",
    "scopes": "SCOPES",
    "audience": "AUDIENCE",
    "resource": "RESOURCE",
    "private_key_file": "PRIVATE_KEY_FILE",
    "certificate_file": "CERTIFICATE_FILE",
    "ca_file": "CA_FILE",
    "cert_file": "CERT_FILE",
    "key_file": "KEY_FILE",
    "store": "STORE",
}


@dataclass(frozen=True)
class Settings:
    """Everything needed to build a client; the secret stays wrapped in ``Secret``.

    ``flags`` maps a setting to the CLI flag that also sets it, so that messages name
    what the reader can actually type (the library passes none).
    """

    token_url: str | None
    issuer: str | None
    client_id: str | None
    secret: Secret | SecretFile | None
    auth_method: str | None
    scopes: tuple[str, ...]
    audience: str | None
    resources: tuple[str, ...]
    private_key: KeyFile | None
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    store: str | None
    timeout: float | None = None
    certificate_file: str | None = None
    allow_insecure_http: bool = False
    prefix: str = "TOKENFLEET_"
    flags: Mapping[str, str] = field(default_factory=dict)

    def where(self, setting: str, *, alternative: str = "", note: str = "") -> str:
        """``set TOKENFLEET_CLIENT_ID, or pass --client-id ID`` (flags only in the CLI)."""
        text = f"set {alternative}{self.prefix}{VARIABLES[setting]}{note}"
        flag = self.flags.get(setting)
        return f"{text}, or pass {flag}" if flag else text


def _words(values: list[str] | str | None) -> tuple[str, ...]:
    """Scopes or resources from repeated flags or one string: spaces and commas split."""
    if values is None:
        return ()
    items = [values] if isinstance(values, str) else values
    return tuple(word for item in items for word in item.replace(",", " ").split())


def read_settings(
    env: Mapping[str, str] | None = None,
    *,
    prefix: str = "TOKENFLEET_",
    overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """Merge ``overrides`` (CLI flags) over the environment; read secret and key files.

    Files are not read here: the client reads them (``SecretFile``, ``KeyFile``) when a
    token request is sent, and again when they change.
    """
    env = os.environ if env is None else env
    given = {k: v for k, v in (overrides or {}).items() if v is not None}

    def pick(setting: str) -> Any:
        if setting in given:
            return given[setting]
        return env.get(prefix + VARIABLES[setting]) or None

    key_path = pick("private_key_file")
    timeout = given.get("timeout")
    return Settings(
        token_url=pick("token_url"),
        issuer=pick("issuer"),
        client_id=pick("client_id"),
        secret=_secret(pick("client_secret_file"), pick("client_secret")),
        auth_method=pick("auth_method"),
        scopes=_words(pick("scopes")),
        audience=pick("audience"),
        resources=_words(pick("resource")),
        private_key=KeyFile(key_path) if key_path else None,
        ca_file=pick("ca_file"),
        cert_file=pick("cert_file"),
        key_file=pick("key_file"),
        store=pick("store"),
        timeout=None if timeout is None else float(timeout),
        certificate_file=pick("certificate_file"),
        allow_insecure_http=bool(given.get("allow_insecure_http", False)),
        prefix=prefix,
        flags=dict(flags or {}),
    )


def _secret(path: str | None, value: str | None) -> Secret | SecretFile | None:
    """The file wins over the variable, as the CLI documents. A ``SecretFile``: read when
    a token request is sent, again when the file changes or after ``invalid_client``."""
    if path is not None:
        return SecretFile(Path(path).expanduser())
    return Secret(value) if value else None


def auth_method_of(settings: Settings) -> str:
    """The configured method, or the default for the credentials at hand."""
    if settings.auth_method:
        if settings.auth_method not in AUTH_METHODS:
            raise ConfigurationError(
                f"unknown auth method {settings.auth_method!r} "
                f"({settings.prefix}AUTH_METHOD); use one of " + ", ".join(AUTH_METHODS)
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


def missing_settings(settings: Settings) -> list[tuple[str, str]]:
    """Every missing setting as ``(what is missing, how to set it)``; empty when complete."""
    missing: list[tuple[str, str]] = []
    if not (settings.token_url or settings.issuer):
        missing.append(
            (
                "no token endpoint",
                settings.where("token_url", note=f" (or {settings.prefix}ISSUER to discover it)"),
            )
        )
    if not settings.client_id:
        missing.append(("no client id", settings.where("client_id")))
    method = auth_method_of(settings)
    if method in SECRET_METHODS and settings.secret is None:
        missing.append(
            (
                f"no client secret for {method}",
                settings.where(
                    "client_secret_file", alternative=f"{settings.prefix}CLIENT_SECRET or "
                ),
            )
        )
    if method == "private_key_jwt" and settings.private_key is None:
        missing.append(("no private key for private_key_jwt", settings.where("private_key_file")))
    if method == "tls_client_auth" and not settings.cert_file:
        missing.append(("no client certificate for tls_client_auth", settings.where("cert_file")))
    return missing


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """The ``ClientCredentials(...)`` arguments for complete settings.

    Raises:
        ConfigurationError: settings are missing; the message lists every one.
    """
    missing = missing_settings(settings)
    if missing:
        listed = "; ".join(f"{what}: {how}" for what, how in missing)
        raise ConfigurationError(f"missing settings: {listed}")
    method = auth_method_of(settings)
    kwargs: dict[str, Any] = {
        "token_url": settings.token_url,
        "issuer": settings.issuer,
        "client_id": settings.client_id,
        "client_secret": settings.secret if method in SECRET_METHODS else None,
        "auth_method": method,
        "scopes": settings.scopes or None,
        "audience": settings.audience,
        "resource": list(settings.resources) or None,
        "private_key": settings.private_key if method == "private_key_jwt" else None,
        "ssl_context": ssl_context_of(settings),
        "allow_insecure_http": settings.allow_insecure_http,
    }
    if settings.certificate_file:
        kwargs["certificate"] = _read_certificate(settings)
    if settings.timeout is not None:
        kwargs["timeout"] = settings.timeout
    return kwargs


def _read_certificate(settings: Settings) -> bytes:
    """The certificate is public: read once, here (a new one comes with a new key)."""
    path = settings.certificate_file or ""
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the certificate file {path!r} ({settings.where('certificate_file')}):"
            f" {exc.strerror or type(exc).__name__}"
        ) from None
