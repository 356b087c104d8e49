"""Every error threadloom raises on purpose.

    ThreadloomError
    ├── UserError              misuse of the API, raised at construction, with a hint
    ├── ThreadDecodeError      thread JSON that is corrupt or of the wrong shape
    ├── InvalidTransition      approve / reject / respond on something not pending
    ├── ParseError             model text that cannot become the asked-for type
    ├── ContextTooLarge        a rendering over its token budget after compaction
    └── ModelError             the model could not give an answer
        └── ScriptExhausted    a ScriptedModel was asked for more outputs than it has

`ToolRetry` is not an error but a signal a tool raises to steer the loop, so it
subclasses `Exception` directly.
"""

from __future__ import annotations

__all__ = [
    "ContextTooLarge",
    "InvalidTransition",
    "ModelError",
    "ParseError",
    "ScriptExhausted",
    "ThreadDecodeError",
    "ThreadloomError",
    "ToolRetry",
    "UserError",
]


class ThreadloomError(Exception):
    """Base of every error threadloom raises on purpose."""


class UserError(ThreadloomError):
    """The API was used in a way that cannot work; the message says how to fix it."""


class ThreadDecodeError(ThreadloomError, ValueError):
    """Thread JSON that is corrupt or does not have a thread's shape."""


class InvalidTransition(ThreadloomError):
    """A human action that does not fit the thread's state, e.g. approving a call that is not pending.

    Attributes:
        thread_id: The thread the action was aimed at.
    """

    def __init__(self, message: str, *, thread_id: str) -> None:
        super().__init__(message)
        self.thread_id = thread_id


class ParseError(ThreadloomError, ValueError):
    """Model output that cannot be turned into the asked-for type.

    The message is written for the model: one or two lines that say what was wrong,
    so the loop can put it in the thread and ask again.

    Attributes:
        text: The raw model text that failed to parse.
    """

    def __init__(self, message: str, *, text: str = "") -> None:
        super().__init__(message)
        self.text = text


class ContextTooLarge(ThreadloomError):
    """A rendered context is over its token budget even after the compaction hook ran.

    Attributes:
        tokens: The size of the rendering.
        max_tokens: The budget it had to fit.
    """

    def __init__(self, message: str, *, tokens: int, max_tokens: int) -> None:
        super().__init__(message)
        self.tokens = tokens
        self.max_tokens = max_tokens


class ModelError(ThreadloomError):
    """The model could not give an answer (network, provider or script trouble)."""


class ScriptExhausted(ModelError):
    """A `ScriptedModel` was asked for output number `requested` but holds only `available`.

    Attributes:
        requested: The 1-based number of the request that found no output.
        available: How many outputs the script was given.
    """

    def __init__(self, message: str, *, requested: int, available: int) -> None:
        super().__init__(message)
        self.requested = requested
        self.available = available


class ToolRetry(Exception):
    """Raise inside a tool to tell the model to try the call again with the given advice.

    The message becomes the compact `error` event the model sees; it counts toward the
    tool's consecutive-error limit like any failure.
    """
