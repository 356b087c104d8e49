"""threadloom: production LLM agents the 12-factor way."""

from .events import Event, EventLog, Thread
from .exceptions import (
    ContextTooLarge,
    InvalidTransition,
    ModelError,
    ParseError,
    ScriptExhausted,
    ThreadDecodeError,
    ThreadloomError,
    ToolRetry,
    UserError,
)
from .state import RunnableCall, Status, ThreadState

__all__ = [
    "ContextTooLarge",
    "Event",
    "EventLog",
    "InvalidTransition",
    "ModelError",
    "ParseError",
    "RunnableCall",
    "ScriptExhausted",
    "Status",
    "Thread",
    "ThreadDecodeError",
    "ThreadState",
    "ThreadloomError",
    "ToolRetry",
    "UserError",
]
