"""The constant-time comparison of the tokens strangers send: answer links, session cookies, CSRF fields."""

from __future__ import annotations

import hmac

__all__ = ["same_token"]


def same_token(given: str, expected: str) -> bool:
    """Whether `given` is `expected`, in constant time, for any text.

    `hmac.compare_digest` raises TypeError on a str that is not ASCII, which a forged link, cookie or
    form field may well be: compared as UTF-8 bytes, it is just not the token.
    """
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))
