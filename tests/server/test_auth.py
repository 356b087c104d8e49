"""`_auth.holds`: a long request's key, asked again (the checks at a request's start run in every route's tests)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.requests import Request

from threadloom.server._auth import holds


class _Keys:
    def __init__(self, known: dict[str, frozenset[str]]) -> None:
        self.known = known

    async def find(self, secret: str) -> SimpleNamespace | None:
        scopes = self.known.get(secret)
        return None if scopes is None else SimpleNamespace(name="k", scopes=scopes)


def _request(keys: _Keys, *headers: tuple[str, str]) -> Request:
    app = SimpleNamespace(state=SimpleNamespace(config=SimpleNamespace(keys=keys)))
    raw = [(name.lower().encode(), value.encode()) for name, value in headers]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "app": app})


@pytest.mark.parametrize(
    "header", [("Authorization", "Bearer tlk_1"), ("authorization", "bearer tlk_1"), ("X-API-Key", "tlk_1")]
)
async def test_a_key_that_is_still_known_still_holds_its_scopes(header: tuple[str, str]) -> None:
    keys = _Keys({"tlk_1": frozenset({"read"})})
    assert await holds(_request(keys, header), "read")
    assert not await holds(_request(keys, header), "approve")
    keys.known.clear()  # revoked
    assert not await holds(_request(keys, header), "read")


async def test_no_key_holds_nothing() -> None:
    keys = _Keys({"tlk_1": frozenset({"read"})})
    assert not await holds(_request(keys), "read")
    assert not await holds(_request(keys, ("Authorization", "Basic dGxrXzE=")), "read")
