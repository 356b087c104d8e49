"""threadloom: production LLM agents the 12-factor way.

The thread of typed events is the only state; the model picks the next step as a typed intent; the
loop is plain code with a per-tool policy. See docs/ for one page per factor.
"""

from importlib import metadata as _metadata

from ._limits import RunLimits
from .agent import Agent
from .context import Context
from .events import Event
from .exceptions import (
    AlreadyDelivered,
    ContextWindowExceeded,
    IdempotencyKeyReused,
    InvalidTransition,
    LeaseLost,
    ModelError,
    ModelHTTPError,
    ModelTimeout,
    NotStorable,
    OverTokenBudget,
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
from .intents import DoneForNow, Intent, RequestHumanInput, RequestMoreInformation, Tool, WaitUntil, tool
from .messages import Message
from .parsing import parse
from .runtime import Runtime
from .state import RunnableCall, Status, ThreadState
from .thread import EventLog, Thread
from .worker import Worker

try:
    __version__ = _metadata.version("threadloom")
    """The installed distribution's version."""
except _metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Agent",
    "AlreadyDelivered",
    "Context",
    "ContextWindowExceeded",
    "DoneForNow",
    "Event",
    "EventLog",
    "IdempotencyKeyReused",
    "Intent",
    "InvalidTransition",
    "LeaseLost",
    "Message",
    "ModelError",
    "ModelHTTPError",
    "ModelTimeout",
    "NotStorable",
    "OverTokenBudget",
    "ParseError",
    "ProviderError",
    "RateLimited",
    "Refused",
    "RequestHumanInput",
    "RequestMoreInformation",
    "RunLimits",
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
    "WaitUntil",
    "Worker",
    "__version__",
    "parse",
    "tool",
]
