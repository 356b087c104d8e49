"""threadloom: production LLM agents the 12-factor way.

The thread of typed events is the only state; the model picks the next step as a typed intent; the
loop is plain code with a per-tool policy. See docs/ for one page per factor.
"""

from .agent import Agent
from .events import Event
from .exceptions import (
    AlreadyDelivered,
    ContextWindowExceeded,
    InvalidTransition,
    LeaseLost,
    ModelError,
    ModelHTTPError,
    ModelTimeout,
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
from .intents import DoneForNow, Intent, RequestHumanInput, RequestMoreInformation, Tool, tool
from .messages import Message
from .parsing import parse
from .runtime import Runtime
from .state import RunnableCall, Status, ThreadState
from .thread import EventLog, Thread
from .worker import Worker

__all__ = [
    "Refused",
    "RateLimited",
    "ProviderError",
    "ModelTimeout",
    "ModelHTTPError",
    "ContextWindowExceeded",
    "Agent",
    "AlreadyDelivered",
    "OverTokenBudget",
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
