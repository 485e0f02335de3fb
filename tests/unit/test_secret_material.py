"""Secret material stays wrapped: clients refuse pickling, bad secrets give typed errors."""

from __future__ import annotations

import pickle
import traceback

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tokenfleet import ClientCredentials, ConfigurationError, Secret

URL = "https://idp.example.com/token"
SECRET = "s3cret-value-that-must-never-leak-0123456789abcdef0123456789abcdef"


def _pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "client_secret_jwt"]
)
@pytest.mark.parametrize("wrap", [str, Secret])
def test_a_client_with_a_secret_refuses_pickling(method: str, wrap: type) -> None:
    client = ClientCredentials(
        URL,
        client_id="svc",
        client_secret=wrap(SECRET),
        auth_method=method,  # type: ignore[arg-type]
    )
    for obj in (client, client._auth):
        with pytest.raises(ConfigurationError, match="cannot be pickled") as info:
            pickle.dumps(obj)
        assert SECRET not in str(info.value)


def test_a_client_with_a_private_key_refuses_pickling() -> None:
    pem = _pem()
    client = ClientCredentials(URL, client_id="svc", private_key=pem)
    for obj in (client, client._auth):
        with pytest.raises(ConfigurationError, match="cannot be pickled"):
            pickle.dumps(obj)


def test_the_auth_object_keeps_no_clear_secret_in_its_attributes() -> None:
    client = ClientCredentials(
        URL, client_id="svc", client_secret=SECRET, auth_method="client_secret_jwt"
    )
    auth = client._auth
    names = [n for cls in type(auth).__mro__ for n in getattr(cls, "__slots__", ())]
    values = [getattr(auth, n, None) for n in names] + list(
        vars(auth).values() if hasattr(auth, "__dict__") else []
    )
    for value in values:
        assert not isinstance(value, str | bytes) or SECRET not in str(value)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_bytes_secret_that_is_not_utf8_is_a_typed_error_without_the_secret(
    method: str,
) -> None:
    secret = b"\xff\xfe" + SECRET.encode()
    with pytest.raises(ConfigurationError, match="not UTF-8") as info:
        ClientCredentials(URL, client_id="svc", client_secret=secret, auth_method=method)  # type: ignore[arg-type]
    shown = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert SECRET not in shown and repr(secret) not in shown
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_an_encryption_key_ring_refuses_pickling() -> None:
    # Like the clients and DPoPKey: a typed refusal, not the AESGCM object's TypeError.
    from tokenfleet import AesGcmCipher

    cipher = AesGcmCipher(b"K" * 32)
    with pytest.raises(ConfigurationError, match="cannot be pickled"):
        pickle.dumps(cipher)


def test_a_redis_store_refuses_pickling() -> None:
    # It holds a client whose connection settings carry the Redis password.
    import redis.asyncio

    from tokenfleet import RedisStore

    store = RedisStore(redis.asyncio.Redis(host="127.0.0.1", port=1, password=SECRET))
    with pytest.raises(ConfigurationError, match="cannot be pickled") as info:
        pickle.dumps(store)
    assert SECRET not in str(info.value)
