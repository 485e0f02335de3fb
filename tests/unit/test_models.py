"""Token and Secret: what they show, and what they never show."""

from __future__ import annotations

import copy
import logging
import pickle
from functools import partial

import msgspec
import pytest

import helpers
from tokenfleet import ConfigurationError, Secret, Token, TokenFleetError

ACCESS = "eyJhbGciOiJSUzI1NiJ9.secret-token-value.sig"


# fixed times: what these tests show must not depend on the clock
make_token = partial(
    helpers.make_token, ACCESS, expires_at=2000.0, issued_at=1000.0, scopes=("a", "b")
)


def test_token_properties() -> None:
    token = make_token()
    assert token.authorization == f"Bearer {ACCESS}"
    assert token.lifetime == 1000.0
    assert token.is_expired(now=2000.0)
    assert not token.is_expired(now=1999.0)
    assert token.is_expired(leeway=10, now=1991.0)
    assert not token.is_expired(leeway=10, now=1989.0)
    assert token.expires_in < 0  # 2000 is long past by the wall clock


def test_token_is_frozen() -> None:
    token = make_token()
    with pytest.raises(AttributeError):
        token.access_token = "other"  # type: ignore[misc]


def test_token_repr_hides_access_token() -> None:
    token = make_token()
    for text in (repr(token), str(token), f"{token}", f"{token!r}", str([token])):
        assert ACCESS not in text
        assert token.fingerprint in text
    assert len(token.fingerprint) == 12


def test_token_roundtrips_through_msgspec() -> None:
    token = make_token(extra={"id_token": "x", "n": 1})
    for mod in (msgspec.json, msgspec.msgpack):
        assert mod.decode(mod.encode(token), type=Token) == token


def test_tokens_without_extra_share_one_read_only_empty_mapping() -> None:
    """100,000 cached tokens must not carry 100,000 empty dicts (benchmarks scenario 6),
    yet ``extra`` still reads, compares, copies, pickles and encodes as a plain dict."""
    first, second = make_token(), make_token()
    assert first.extra is second.extra and first.extra == {} and not first.extra
    assert isinstance(first.extra, dict) and first == Token(**{**_fields(first), "extra": {}})
    with pytest.raises(ConfigurationError, match="read-only"):
        first.extra["id_token"] = "x"
    with pytest.raises(ConfigurationError):
        first.extra.update(x=1)
    assert type(copy.deepcopy(first).extra) is dict
    assert type(pickle.loads(pickle.dumps(first)).extra) is dict  # noqa: S301 - our own bytes
    decoded = msgspec.json.decode(msgspec.json.encode(first), type=Token)
    assert decoded == first and decoded.extra == {}
    assert msgspec.to_builtins(first)["extra"] == {}
    given = Token(access_token="a", expires_at=2.0, issued_at=1.0, extra={"id_token": "x"})
    assert given.extra == {"id_token": "x"} and type(given.extra) is dict


def _fields(token: Token) -> dict[str, object]:
    return {name: getattr(token, name) for name in token.__struct_fields__}


def test_secret_never_shows() -> None:
    secret = Secret("hunter2-very-secret")
    shown = [repr(secret), str(secret), f"{secret}", f"{secret:>30}", "%s" % secret, str([secret])]  # noqa: UP031
    assert all("hunter2" not in text for text in shown)
    assert secret.reveal() == "hunter2-very-secret"
    assert secret.reveal_bytes() == b"hunter2-very-secret"
    assert Secret(b"\xc3\xa9").reveal_str() == "é"


def test_secret_not_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret("hunter2-very-secret")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("x").debug("secret is %s / %r", secret, secret)
    assert "hunter2" not in caplog.text
    assert "**********" in caplog.text


def test_secret_refuses_pickling_with_typed_error() -> None:
    with pytest.raises(TokenFleetError, match="cannot be pickled"):
        pickle.dumps(Secret("hunter2"))


def test_secret_equality_copy_and_wrapping() -> None:
    a, b = Secret("x"), Secret(b"x")
    assert a == b
    assert a != Secret("y")
    assert Secret(a).reveal() == "x"
    assert copy.deepcopy(a) is a
    with pytest.raises(TypeError):
        hash(a)
    with pytest.raises(ConfigurationError, match="str or bytes"):
        Secret(123)  # type: ignore[arg-type]


async def test_memory_store_is_bounded_lru_and_expires() -> None:
    from tokenfleet import MemoryStore

    now = [0.0]
    store = MemoryStore(max_entries=3, clock=lambda: now[0])
    tokens = [make_token(access_token=f"t{i}") for i in range(4)]
    for i, token in enumerate(tokens[:3]):
        await store.set(f"k{i}", token, ttl=10)
    assert await store.get("k0") is tokens[0]  # k0 is now the most recently used
    await store.set("k3", tokens[3], ttl=10)  # evicts k1, the least recently used
    assert await store.get("k1") is None
    assert len(store) == 3
    now[0] = 10.0
    assert await store.get("k0") is None  # expired with its ttl
    assert not await store.delete("k2", tokens[0])  # compare-and-delete: not that token
    assert await store.delete("k2", tokens[2])
    with pytest.raises(ConfigurationError):
        MemoryStore(max_entries=0)
