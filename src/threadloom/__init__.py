"""threadloom: production LLM agents the 12-factor way.

The thread of typed events is the only state; the model picks the next step as a typed intent; the
loop is plain code with a per-tool policy. See docs/ for one page per factor.
"""

from importlib import metadata as _metadata

from .agent import Agent
from .context import Message
from .events import Event, EventLog, Thread
from .exceptions import (
    AlreadyDelivered,
    ContextTooLarge,
    ContextTooLong,
    InvalidTransition,
    LeaseLost,
    ModelError,
    ModelHTTPError,
    ModelTimeout,
    ParseError,
    ProviderError,
    RateLimited,
    Refused,
    ScriptExhausted,
    StoreError,
    ThreadDecodeError,
    ThreadloomError,
    ThreadNotFound,
    ToolRetry,
    UserError,
    VersionConflict,
)
from .intents import DoneForNow, Intent, RequestHumanInput, RequestMoreInformation, Tool, tool
from .parsing import parse
from .runtime import Runtime
from .state import RunnableCall, Status, ThreadState
from .worker import Worker

try:
    __version__ = _metadata.version("threadloom")
    """The installed distribution's version."""
except _metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Refused",
    "RateLimited",
    "ProviderError",
    "ModelTimeout",
    "ModelHTTPError",
    "ContextTooLong",
    "Agent",
    "AlreadyDelivered",
    "ContextTooLarge",
    "DoneForNow",
    "Event",
    "EventLog",
    "Intent",
    "InvalidTransition",
    "LeaseLost",
    "Message",
    "ModelError",
    "ParseError",
    "RequestHumanInput",
    "RequestMoreInformation",
    "RunnableCall",
    "Runtime",
    "ScriptExhausted",
    "Status",
    "StoreError",
    "Thread",
    "ThreadDecodeError",
    "ThreadNotFound",
    "ThreadState",
    "ThreadloomError",
    "Tool",
    "ToolRetry",
    "UserError",
    "VersionConflict",
    "Worker",
    "parse",
    "tool",
]
