"""Every error threadloom raises on purpose.

    ThreadloomError
    ├── UserError              misuse of the API, raised at construction, with a hint
    ├── InvalidTransition      approve / reject / respond on something not pending
    ├── ThreadBusy             an outside event kept waiting by a tool that is still running
    ├── ParseError             model text that cannot become the asked-for type
    ├── OverTokenBudget        a rendering over its token budget after compaction
    ├── ModelError             the model could not give an answer
    │   ├── ModelHTTPError     the provider answered with an HTTP error (status_code, body)
    │   │   ├── RateLimited    429 / overloaded: retried by the SDK, then raised
    │   │   ├── ContextWindowExceeded  the request is over the model's context window
    │   │   └── ProviderError  any other error the provider reports (5xx, bad request, bad JSON)
    │   ├── ModelTimeout       no answer in time
    │   ├── Refused            the model declined to answer (safety refusal, content filter)
    │   └── ScriptExhausted    a ScriptedModel was asked for more outputs than it has
    └── StoreError             the thread store refused or failed an operation
        ├── ThreadNotFound     no thread has that id
        ├── VersionConflict    an append extended a version that is no longer the latest
        ├── AlreadyDelivered   an idempotency key was used before: the event is not written again
        ├── IdempotencyKeyReused  a key used before for a different request
        ├── LeaseLost          a worker's append to a thread another worker has since claimed
        ├── NotStorable        a value the store cannot encode (the thread's fault, not the store's)
        └── ThreadDecodeError  thread JSON or stored rows that are corrupt or of the wrong shape

`ToolRetry` is not an error but a signal a tool raises to steer the loop, so it
subclasses `Exception` directly.
"""

from __future__ import annotations

__all__ = [
    "AlreadyDelivered",
    "ContextWindowExceeded",
    "IdempotencyKeyReused",
    "InvalidTransition",
    "LeaseLost",
    "ModelError",
    "ModelHTTPError",
    "ModelTimeout",
    "NotStorable",
    "OverTokenBudget",
    "ParseError",
    "ProviderError",
    "RateLimited",
    "Refused",
    "ScriptExhausted",
    "StoreError",
    "ThreadBusy",
    "ThreadDecodeError",
    "ThreadNotFound",
    "ThreadloomError",
    "ToolRetry",
    "UserError",
    "VersionConflict",
]


class ThreadloomError(Exception):
    """Base of every error threadloom raises on purpose."""


class UserError(ThreadloomError):
    """The API was used in a way that cannot work; the message says how to fix it."""


class InvalidTransition(ThreadloomError):
    """A human action that does not fit the thread's state, e.g. approving a call that is not pending.

    Attributes:
        thread_id: The thread the action was aimed at.
    """

    def __init__(self, message: str, *, thread_id: str) -> None:
        super().__init__(message)
        self.thread_id = thread_id


class ThreadBusy(ThreadloomError):
    """An outside event waited for a running tool's result longer than it was allowed to; nothing was written.

    Events land between steps, never between a call's `tool_started` and its result
    (`Runtime.send_event`); send it again later (with the same idempotency key).

    Attributes:
        thread_id: The thread.
        waited: How long the event waited, in seconds.
    """

    def __init__(self, thread_id: str, *, waited: float) -> None:
        super().__init__(f"thread {thread_id!r} is running a tool; the event waited {waited:.0f} s and was not added")
        self.thread_id = thread_id
        self.waited = waited


class ParseError(ThreadloomError, ValueError):
    """Model output that cannot be turned into the asked-for type.

    The message is written for the model: one or two lines that say what was wrong,
    so the loop can put it in the thread and ask again.

    Attributes:
        text: The raw model text that failed to parse.
        cut_off: The text ended before the JSON (or tool call) it was writing did: an answer
            that ran out of tokens, never to be taken as complete.
    """

    def __init__(self, message: str, *, text: str = "", cut_off: bool = False) -> None:
        super().__init__(message)
        self.text = text
        self.cut_off = cut_off


class OverTokenBudget(ThreadloomError):
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


class ModelHTTPError(ModelError):
    """The provider answered with an HTTP error.

    Attributes:
        status_code: The HTTP status (0 when the connection itself failed).
        body: The error body as the provider sent it (parsed JSON where it was JSON).
        model: The model that was asked.
    """

    def __init__(self, message: str, *, status_code: int, body: object = None, model: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.model = model


class RateLimited(ModelHTTPError):
    """The provider is rate limiting or overloaded (429, Anthropic's 529); the SDK's retries ran out."""


class ContextWindowExceeded(ModelHTTPError):
    """The request does not fit the model's context window; compact the thread (`before_model`)."""


class ProviderError(ModelHTTPError):
    """Any other error the provider reports: a 5xx, a bad request, an answer that is not valid JSON."""


class ModelTimeout(ModelError):
    """The model did not answer within the request's timeout."""


class Refused(ModelError):
    """The model declined to answer (a safety refusal or a content filter)."""


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


class StoreError(ThreadloomError):
    """The thread store refused or failed an operation."""


class ThreadNotFound(StoreError, KeyError):
    """No thread has this id.

    Attributes:
        thread_id: The id that was looked up.
    """

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"no thread {thread_id!r} in the store")
        self.thread_id = thread_id

    def __str__(self) -> str:
        return str(self.args[0])


class VersionConflict(StoreError):
    """An append named a version (event count) that is no longer the thread's latest; nothing was written.

    Reload the thread and decide again: another writer got there first.

    Attributes:
        thread_id: The thread.
        expected: The event count the writer extended.
        actual: The event count in the store.
    """

    def __init__(self, thread_id: str, *, expected: int, actual: int) -> None:
        super().__init__(
            f"thread {thread_id!r} has {actual} events, but the append extends {expected}: reload it and try again"
        )
        self.thread_id = thread_id
        self.expected = expected
        self.actual = actual


class AlreadyDelivered(StoreError):
    """An idempotency key was used before, so its events were not written again.

    Attributes:
        key: The idempotency key.
        thread_id: The thread the first delivery went to.
    """

    def __init__(self, key: str, *, thread_id: str) -> None:
        super().__init__(f"idempotency key {key!r} was already delivered to thread {thread_id!r}")
        self.key = key
        self.thread_id = thread_id


class LeaseLost(StoreError):
    """A worker appended to a thread whose lease it no longer holds; nothing was written.

    It stalled past its lease and another worker claimed the thread: the run must stop at once,
    or a step (a tool call) could happen twice.

    Attributes:
        thread_id: The thread.
        owner: The worker that lost the lease.
    """

    def __init__(self, thread_id: str, *, owner: str) -> None:
        super().__init__(f"worker {owner!r} no longer holds the lease on thread {thread_id!r}; it stops running it")
        self.thread_id = thread_id
        self.owner = owner


class IdempotencyKeyReused(StoreError):
    """An idempotency key was used before, in the same scope, for a different request; nothing was written.

    Keys are scoped per thread (a launch's key per agent): the same key with the same request is a
    repeat and changes nothing, the same key with another request is a mistake worth hearing about.

    Attributes:
        key: The idempotency key.
        thread_id: The thread the first delivery went to.
    """

    def __init__(self, key: str, *, thread_id: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used on thread {thread_id!r} for a different request;"
            " use a new key for a new request"
        )
        self.key = key
        self.thread_id = thread_id


class NotStorable(StoreError):
    """A value the store cannot encode (a lone surrogate, an int too long for JSON); nothing was written.

    Deterministic: retrying the same append fails the same way, so it is the thread's fault, not the
    store's.

    Attributes:
        thread_id: The thread whose append was refused.
    """

    def __init__(self, message: str, *, thread_id: str) -> None:
        super().__init__(message)
        self.thread_id = thread_id


class ThreadDecodeError(StoreError, ValueError):
    """A thread that cannot be read: its JSON, or one of its stored rows, is corrupt or of the wrong shape.

    Attributes:
        thread_id: The thread ("" for JSON text that does not say).
        event_id: The event whose row is bad, or None (the thread's metadata, or no single event).
    """

    def __init__(self, message: str, *, thread_id: str = "", event_id: str | None = None) -> None:
        super().__init__(message)
        self.thread_id = thread_id
        self.event_id = event_id


class ToolRetry(Exception):
    """Raise inside a tool to tell the model to try the call again with the given advice.

    The message becomes the compact `error` event the model sees; it counts toward the
    tool's consecutive-error limit like any failure.
    """
