"""What one `threadloom serve` is configured with: its runtime, keys, link secret, webhooks and limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import timedelta

from ..runtime import Runtime
from ._keys import KeyRing
from .tables import Tables

__all__ = ["NOTIFIED_STATUSES", "InboundHook", "ServerConfig", "Subscription"]

NOTIFIED_STATUSES = frozenset({"waiting_approval", "waiting_human", "done", "failed"})
"""The statuses a webhook subscription hears about."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """An outbound webhook: a URL that gets a signed POST when a thread reaches one of `statuses`."""

    url: str
    """Where the POST goes."""
    secret: str
    """The Standard Webhooks signing secret, `whsec_` and base64."""
    _: KW_ONLY
    statuses: frozenset[str] = NOTIFIED_STATUSES
    """Which statuses it hears about."""


@dataclass(frozen=True, slots=True)
class InboundHook:
    """`POST /v1/hooks/{name}`: a signed payload that launches a thread of `agent`, or resumes one."""

    name: str
    """The path segment."""
    secret: str
    """The Standard Webhooks secret the sender signs with, `whsec_` and base64."""
    agent: str
    """The agent a new thread is launched for."""
    _: KW_ONLY
    event_type: str = "webhook"
    """The type of the event the payload becomes; a payload with a `thread_id` is sent to that thread."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One server: a pure client of `runtime`, plus what only a server needs."""

    runtime: Runtime
    """The agents and the store; the server launches, reads and decides through it."""
    keys: KeyRing
    """The API keys it accepts."""
    secret: bytes
    """The key that signs answer links (and the inbox's session and CSRF tokens)."""
    _: KW_ONLY
    public_url: str = "http://127.0.0.1:8000"
    """The server's address as people reach it: answer links and webhook bodies start with it."""
    worker: bool = True
    """Run a worker in the server's process (`--no-worker`: separate `threadloom worker` processes)."""
    worker_concurrency: int = 4
    """Threads the in-process worker runs at once."""
    subscriptions: tuple[Subscription, ...] = ()
    """Outbound webhooks."""
    hooks: Mapping[str, InboundHook] = field(default_factory=dict[str, InboundHook])
    """Inbound webhooks by name."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed to call the API from a browser; none (CORS off) unless configured."""
    max_body_bytes: int = 1_000_000
    """Requests with a larger body are refused with 413 before they are read."""
    answer_ttl: timedelta = timedelta(days=7)
    """How long an answer link stays valid."""
    tables: Tables | None = None
    """The server's own tables (stored keys, settings, the webhook outbox); closed when the app stops."""
