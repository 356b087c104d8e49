"""Server fixtures: a fresh store of each kind and a real server on it."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving import ADMIN, KEYS, SECRET, Serve, serving

from threadloom import Agent, Runtime
from threadloom.server import KeyRing, ServerConfig, create_app, parse_keys


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store of each kind the server runs on."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/threads.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def serve(store_url: str) -> Serve:
    """`with serve(agents, **config) as client:` a client of a real server on `store_url`, authorised as admin."""

    @contextlib.contextmanager
    def start(agents: Sequence[Agent] = (), *, key: str = ADMIN, **config: Any) -> Generator[httpx.Client]:
        runtime = Runtime(store=store_url, agents=agents)
        settings = ServerConfig(runtime=runtime, keys=KeyRing(parse_keys(KEYS)), secret=SECRET, **config)
        with (
            serving(create_app(settings)) as url,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client,
        ):
            yield client

    return start
