"""A Redis failure's StoreError carries no password anywhere in its chain (the message is
redacted; a cause kept for debugging must be too), sentinel passwords included."""

from __future__ import annotations

import traceback

import pytest

from redis_server import free_port
from tokenfleet import RedisStore, StoreError

PASSWORD = "s3cret-redis-password"


def whole_chain(error: BaseException) -> str:
    return (
        "".join(traceback.format_exception(error))
        + repr(error.__cause__)
        + repr(error.__context__)
    )


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}@127.0.0.1:{{port}}/0?socket_connect_timeout=0.5",
        f"redis+sentinel://127.0.0.1:{{port}}/mymaster?sentinel_password={PASSWORD}"
        "&socket_connect_timeout=0.5",
    ],
    ids=["redis", "sentinel"],
)
async def test_no_redis_password_in_a_store_errors_chain(url: str) -> None:
    store = RedisStore(url.format(port=free_port()), op_timeout=2.0)
    try:
        with pytest.raises(StoreError) as caught:
            await store.get("key")
    finally:
        await store.aclose()
    assert PASSWORD not in whole_chain(caught.value)
