"""Messages cut to a bound are cut between words, with an ellipsis (issue 16: "no message
is cut mid-word")."""

from __future__ import annotations

from tokenfleet._client.http import _error_detail
from tokenfleet._util.redact import printable

LONG = " ".join(f"word{i:03d}" for i in range(100))  # 799 characters


def test_printable_cuts_between_words() -> None:
    cut = printable(LONG, 300)
    assert cut.endswith(" …") and len(cut) <= 302
    assert cut[:-2].split(" ")[-1] in LONG.split(" ")  # the last word is whole


def test_printable_keeps_short_text_and_cuts_one_long_word() -> None:
    assert printable("short text", 300) == "short text"
    assert printable("x" * 400, 300) == "x" * 300 + "…"


def test_transport_error_detail_is_not_cut_mid_word() -> None:
    detail = _error_detail(OSError(LONG), ())
    assert detail.startswith(" (") and detail.endswith(" …)")
    assert detail[2:-3].split(" ")[-1] in LONG.split(" ")


def test_a_short_secret_is_not_masked_letter_by_letter() -> None:
    # client_secret="s" turned "Cannot connect to host" into "Cannot connect to ho[redacted]t":
    # a mangled message that shows, by where the masks fall, what the secret is.
    from tokenfleet._util.redact import REDACTED, redact

    text = "Cannot connect to host idp:443 ssl:default [Name or service not known]"
    assert redact(text, ("s",)) == REDACTED
    assert redact(text, ("not-in-the-text",)) == text
    long_secret = "a-long-client-secret-value"
    assert redact(f"echoed {long_secret} back", (long_secret,)) == f"echoed {REDACTED} back"


def test_a_redis_error_text_reaches_the_store_error_printable() -> None:
    # The text of a ResponseError is the Redis server's: a store is not trusted, and
    # a CR/LF or an escape sequence in it must not forge log lines or reach a terminal.
    import redis.asyncio
    from redis.exceptions import ResponseError

    from tokenfleet import RedisStore

    store = RedisStore(redis.asyncio.Redis(host="127.0.0.1", port=1))
    error = store._store_error("GET", ResponseError("ERR bad\r\nForged: line\x1b[31m"))
    assert "\r" not in str(error) and "\n" not in str(error) and "\x1b" not in str(error)
