"""Being built."""

from __future__ import annotations

import asyncio

from ._config import ServerConfig

__all__ = ["deliver"]


async def deliver(config: ServerConfig, stop: asyncio.Event) -> None:
    """Deliver queued webhooks until `stop` is set."""
    del config
    await stop.wait()
