"""Render a thread for a model (factor 3): every token is yours to see and change.

Three formats: `xml` (the default: one user message of XML-tagged events with YAML bodies, as in the
12-factor seed), `yaml` (one user message, a YAML list), and `messages` (standard chat messages with
tool calls and tool results in the shape providers expect). Before any format, secrets are
redacted and errors that a later success resolved are left out; the log itself is never changed.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from pydantic import JsonValue

from ._yaml import dump_yaml
from .events import BOOKKEEPING_EVENTS, Event
from .exceptions import OverTokenBudget, UserError
from .messages import Message, ToolCall
from .state import (
    APPROVAL,
    ERROR,
    FAILED,
    HUMAN_RESPONSE,
    MODEL_RECORD_EVENTS,
    TOOL_CALL,
    TOOL_RESPONSE,
    TOOL_STARTED,
    USER_INPUT,
    model_record,
)
from .thread import Thread, shared_items
from .tokens import TokenCounter, count_messages, default_counter

__all__ = [
    "DEFAULT_SECRET_PATTERN",
    "REDACTED",
    "Context",
    "EventRenderer",
    "Format",
    "Message",
    "ThreadRenderer",
    "ToolCall",
    "event_to_prompt",
    "redact",
    "render",
    "thread_to_prompt",
]

Format = Literal["xml", "yaml", "messages"]
REDACTED = "[REDACTED]"
DEFAULT_SECRET_PATTERN = re.compile(
    r"passw(or)?d|passphrase|secret|api[-_]?key|token|authorization|session[-_]?id|cookie|private[-_]?key"
    r"|credential",
    re.IGNORECASE,
)
"""Keys whose values never reach a model: matched anywhere in the key (`access_token`, `X-Api-Key`)."""

# Keys that only machines need; the model reads the same facts from the structure around them.
_INTERNAL_KEYS = frozenset({"call_id", "request_id", "policy", "prefetch", "source", "error_type", "output", "reason"})
_BOOKKEEPING = BOOKKEEPING_EVENTS  # records of what was done; the model learns nothing from them
_MODEL_EVENTS = frozenset({"tool_call", "done_for_now", "request_human_input", "request_more_information"})
_RESOLUTION_EVENTS = _MODEL_EVENTS | {"approval", "error", "tool_response"}


EventRenderer = Callable[[Event], "str | None"]
"""Renders one event to text for the xml/yaml formats; returning None leaves the event out."""
ThreadRenderer = Callable[[Thread], "str | Sequence[Message]"]
"""Replaces the whole rendering: a thread (already redacted, resolved errors gone) to text or messages."""
Compactor = Callable[[Thread], Thread]
"""Returns a shorter thread to render when over budget, e.g. with old events summarised."""


def redact(value: JsonValue, pattern: re.Pattern[str] | None, keys: Collection[str] = ()) -> JsonValue:
    """`value` with every value under a secret key replaced by `"[REDACTED]"`, at any depth.

    Example:
        ```python
        from threadloom.context import DEFAULT_SECRET_PATTERN, redact

        data = {"user": "ada", "auth": {"api_key": "sk-1", "Authorization": "Bearer x"}}
        assert redact(data, DEFAULT_SECRET_PATTERN) == {
            "user": "ada",
            "auth": {"api_key": "[REDACTED]", "Authorization": "[REDACTED]"},
        }
        ```
    """
    # A value with nothing to hide comes back as the same object, so that the renderer can keep
    # the original events (and skip rebuilding the thread) when no secret is in them.
    return _redact(value, None if pattern is None else _secret_test(pattern), keys)


_CONTAINERS = (dict, list)
_DICT_OR_NONE = (dict, type(None))  # tuples: `dict | None` would build a union at every call


def _redact(value: JsonValue, is_secret: Callable[[str], bool] | None, keys: Collection[str]) -> JsonValue:
    """`redact` with the pattern's test looked up once, not at every key."""
    if isinstance(value, dict):
        out: dict[str, JsonValue] | None = None
        for k, v in value.items():
            if k in keys or (is_secret is not None and is_secret(k)):
                new: JsonValue = REDACTED
            elif isinstance(v, _CONTAINERS):  # a tuple: `dict | list` would build a union at every key
                new = _redact(v, is_secret, keys)
            else:  # a scalar under a plain key: nothing below it to hide
                if out is not None:
                    out[k] = v
                continue
            if out is None and new is not v:
                out = dict(itertools.takewhile(lambda item, key=k: item[0] != key, value.items()))
            if out is not None:
                out[k] = new
        return value if out is None else out
    if isinstance(value, list):
        items = [_redact(v, is_secret, keys) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def _redact_known(
    value: JsonValue, plain: set[str], is_secret: Callable[[str], bool] | None, keys: Collection[str]
) -> JsonValue:
    """`_redact`, faster for the usual value with nothing to hide: keys once found not secret are kept in `plain`.

    A value with a secret key anywhere in it goes to `_redact`, which builds its redacted copy.
    """
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in plain:
                if k in keys or (is_secret is not None and is_secret(k)):
                    return _redact(value, is_secret, keys)
                if len(plain) >= _PLAIN_LIMIT:
                    plain.clear()  # keys can be data (ids, names): keep the memory bounded
                plain.add(k)
            if isinstance(v, _CONTAINERS) and _redact_known(v, plain, is_secret, keys) is not v:
                return _redact(value, is_secret, keys)
        return value
    if isinstance(value, list):
        for v in value:
            if isinstance(v, _CONTAINERS) and _redact_known(v, plain, is_secret, keys) is not v:
                return _redact(value, is_secret, keys)
    return value


_PLAIN_LIMIT = 4096


@functools.lru_cache(maxsize=64)
def _secret_test(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    """Whether `pattern` marks a key secret, remembered per key: the same few keys recur in every event.

    One remembered test per pattern, since hashing a compiled pattern (to look a key up under it) costs
    about as much as the search itself.
    """

    @functools.lru_cache(maxsize=4096)
    def is_secret(key: str) -> bool:
        return pattern.search(key) is not None

    return is_secret


def _fields(event: Event) -> dict[str, JsonValue]:
    return event.data if isinstance(event.data, dict) else {}


def _body(type_: str, value: JsonValue) -> tuple[str, JsonValue]:
    """The tag and the body the xml and yaml formats show for an event of type `type_` with data `value`."""
    data: dict[str, JsonValue] = value if isinstance(value, dict) else {}
    match type_:
        case "tool_call":
            intent, arguments = data.get("intent"), data.get("arguments")
            if isinstance(intent, str) and _is_tag(intent) and isinstance(arguments, _DICT_OR_NONE):
                return intent, arguments or {}  # the tool's name says it was called: `<name_result>` answers
            return "tool_call", {"intent": intent, **(arguments if isinstance(arguments, dict) else {})}
        case "tool_response":
            return f"{data.get('intent')}_result", data.get("result")
        case "error" if data.get("source") == "model":
            return "error", f"your last answer could not be used: {data.get('message')}"
        case "error":
            return "error", {"intent": data.get("intent"), "message": data.get("message")}
        case "approval" if data.get("approved") is True:
            edits = data.get("edits")
            return "approval", {"approved": True, **({"edits": edits} if edits else {})}
        case "approval":
            return "approval", {"approved": False, "feedback": data.get("feedback")}
        case "human_response" if set(data) <= {"request_id", "text"}:
            return "human_response", data.get("text")
        case _ if isinstance(value, dict):
            return type_, {k: v for k, v in data.items() if k not in _INTERNAL_KEYS}
        case _:
            return type_, value


def event_to_prompt(event: Event, *, format: Literal["xml", "yaml"] = "xml") -> str:
    """The default rendering of one event.

    In `xml`, the event's tag around its body, a body of one line on the tag's line; in `yaml`, one
    item of a list. A tool call is shown under the tool's name, with its arguments. Bodies are YAML
    in which a list of like objects is a table (see `threadloom._yaml`).

    Example:
        ```python
        from threadloom import Event
        from threadloom.context import event_to_prompt

        event = Event("slack_message", {"from": "@alex", "text": "deploy the backend"})
        assert event_to_prompt(event).splitlines() == [
            "<slack_message>",
            'from: "@alex"',
            "text: deploy the backend",
            "</slack_message>",
        ]
        assert event_to_prompt(event, format="yaml").splitlines()[0] == "- slack_message:"
        call = Event("tool_call", {"intent": "deploy_backend", "arguments": {"tag": "v1.2.3"}})
        assert event_to_prompt(call) == "<deploy_backend>tag: v1.2.3</deploy_backend>"
        ```
    """
    return _event_text(event.type, event.data, format)


def _event_text(type_: str, data: JsonValue, format: Literal["xml", "yaml"]) -> str:
    """`event_to_prompt` of an event with this type and data (the renderer need not build the event)."""
    tag, body = _body(type_, data)
    if format == "yaml":
        # One item of the thread's list; not `dump_yaml([...])`, which could make a one-row table of it.
        return "- " + dump_yaml({tag: body}, indent=2, tables=True)[2:]
    # Text between tags needs no YAML quoting (the tags delimit it), nor indenting.
    text = body if isinstance(body, str) else dump_yaml(body, tables=True)
    if "\n" in text:
        return f"<{tag}>\n{text}\n</{tag}>"
    return f"<{tag}>{text}</{tag}>"


_TAG = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Tags of threadloom's own events: a tool named like one is shown as `<tool_call>`, never mistaken for it.
_OWN_TAGS = frozenset(
    {USER_INPUT, TOOL_CALL, TOOL_STARTED, APPROVAL, TOOL_RESPONSE, ERROR, HUMAN_RESPONSE, FAILED, "wake_up"}
)


@functools.lru_cache(maxsize=1024)
def _is_tag(name: str) -> bool:
    """Whether a tool call can be shown under the tool's name: a valid XML tag, not an event's, not a result's."""
    return (
        _TAG.fullmatch(name) is not None
        and not name.lower().startswith("xml")
        and name not in _OWN_TAGS
        and not name.endswith("_result")
    )


def thread_to_prompt(
    thread: Thread,
    *,
    format: Literal["xml", "yaml"] = "xml",
    renderers: Mapping[str, EventRenderer] | None = None,
) -> str:
    """Every event of `thread`, rendered and joined (no redaction: `render` does that first)."""
    return _thread_to_prompt(thread, format, renderers or {}, None)


def _thread_to_prompt(
    thread: Thread,
    format: Literal["xml", "yaml"],
    renderers: Mapping[str, EventRenderer],
    cache: _Cache | None,
) -> str:
    """`thread_to_prompt`, reusing the default rendering of events seen before when given a cache."""
    parts: list[str] = []
    for event in thread.events:
        renderer = renderers.get(event.type)
        if renderer is not None:
            text = renderer(event)  # user code: called every time, never cached
        elif cache is not None and (hit := cache.get(event.id)) is not None and hit[0] is event:
            text = hit[1]
        else:
            text = _default_text(event, format)
            if cache is not None:
                _remember(cache, event.id, (event, text))
        if text is not None:
            parts.append(text)
    return "\n\n".join(parts) if format == "xml" else "\n".join(parts)


def _default_text(event: Event, format: Literal["xml", "yaml"]) -> str | None:
    return event_to_prompt(event, format=format) if _shown(event) else None


def _shown(event: Event) -> bool:
    """Whether the default rendering shows `event` at all (decided before redacting it, which costs)."""
    if event.type == "tool_call" and _fields(event).get("prefetch"):
        return False  # code made this call, not the model: its `<name_result>` says all (factor 13)
    return event.type not in _BOOKKEEPING


_Cache = dict[str, tuple[Event, Any]]
"""Per event id, the event object a result was computed from and the result."""
_CACHE_LIMIT = 20_000


def _remember(cache: _Cache, event_id: str, entry: tuple[Event, Any]) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()  # a long-running worker renders many threads: keep the memory bounded
    cache[event_id] = entry


@dataclass(frozen=True, slots=True, eq=False)
class Context:
    """How a thread is rendered for a model; `Agent(context=...)` takes one.

    Example:
        ```python
        from threadloom import Thread
        from threadloom.context import Context

        thread = Thread.start("user_input", {"text": "hi", "password": "hunter2"})
        [message] = Context(format="yaml").render(thread)
        assert message.content.splitlines() == ["- user_input:", "    text: hi", '    password: "[REDACTED]"']
        ```
    """

    format: Format = "xml"
    """`xml` (default), `yaml` or `messages`."""
    renderers: Mapping[str, EventRenderer] = field(default_factory=dict[str, EventRenderer])
    """Per event type, a function that replaces `event_to_prompt` (xml and yaml formats)."""
    thread_to_prompt: ThreadRenderer | None = None
    """Replaces the whole rendering; it gets the redacted thread with resolved errors left out."""
    redact: re.Pattern[str] | str | None = DEFAULT_SECRET_PATTERN
    """Keys whose values are replaced by `[REDACTED]`; None turns redaction off."""
    secret_keys: frozenset[str] = frozenset()
    """Exact key names that are always secret (the agent adds tool arguments typed `SecretStr`)."""
    hide_resolved_errors: bool = True
    """Leave out errors (and the failed calls) of a tool that has since succeeded."""
    max_tokens: int | None = None
    """The budget for the rendered thread; over it, `compact` runs, then `OverTokenBudget`."""
    compact: Compactor | None = None
    """Returns a shorter thread when the rendering is over `max_tokens`."""
    counter: TokenCounter | None = None
    """Counts tokens for the budget; `tokens.default_counter()` when None."""
    # Events are immutable, so what this context makes of one (its redacted form, its default text)
    # never changes: an agent renders the whole thread at every step, and these caches make a step
    # cost a lookup per old event instead of a YAML dump. An entry is used only for the very same
    # Event object (`is`), so two threads with equal ids but other events never mix.
    _visible_cache: _Cache = field(default_factory=dict[str, tuple[Event, Any]], init=False, repr=False)
    _text_cache: _Cache = field(default_factory=dict[str, tuple[Event, Any]], init=False, repr=False)
    # With the default renderers, more: per shared event list, the texts so far and the fold that
    # hides resolved errors, so a step reads only the events added since the last one.
    _progress: dict[int, _Progress] = field(default_factory=dict[int, "_Progress"], init=False, repr=False)
    # Keys this context's redaction has found not secret: most events repeat the same few keys.
    _plain_keys: set[str] = field(default_factory=set[str], init=False, repr=False)

    def __post_init__(self) -> None:
        if self.format not in ("xml", "yaml", "messages"):
            raise UserError(f"format must be 'xml', 'yaml' or 'messages', got {self.format!r}")
        if isinstance(self.redact, str):
            object.__setattr__(self, "redact", re.compile(self.redact, re.IGNORECASE))

    def render(self, thread: Thread, *, system: str | None = None) -> list[Message]:
        """The thread as messages for a model, within the token budget.

        Args:
            thread: The thread to render.
            system: A system message to put first, if any.

        Returns:
            `[system?, user]` for xml and yaml; chat messages for `messages`.

        Raises:
            OverTokenBudget: Over `max_tokens` even after `compact`.
        """
        messages = self._render(thread, system)
        if self.max_tokens is None:
            return messages
        counter = self.counter or default_counter()
        tokens = count_messages(messages, counter)
        if tokens <= self.max_tokens:
            return messages
        if self.compact is not None:
            messages = self._render(self.compact(thread), system)
            tokens = count_messages(messages, counter)
            if tokens <= self.max_tokens:
                return messages
        hint = "make the compact= hook shorten more" if self.compact else "pass compact= to shorten the thread"
        raise OverTokenBudget(
            f"thread {thread.id!r} renders to {tokens} tokens ({counter.name}), over max_tokens={self.max_tokens}; "
            f"{hint}",
            tokens=tokens,
            max_tokens=self.max_tokens,
        )

    def _render(self, thread: Thread, system: str | None) -> list[Message]:
        head = [Message("system", system)] if system is not None else []
        if self.thread_to_prompt is None and self.format != "messages" and not self.renderers:
            return [*head, Message("user", self._default_text(thread))]
        visible = self._visible(thread)
        if self.thread_to_prompt is not None:
            custom = self.thread_to_prompt(visible)
            return head + ([Message("user", custom)] if isinstance(custom, str) else list(custom))
        if self.format == "messages":
            return head + _to_messages(visible)
        text = _thread_to_prompt(visible, self.format, self.renderers, self._text_cache)
        return [*head, Message("user", text)]

    def _default_text(self, thread: Thread) -> str:
        """`thread_to_prompt` of the visible thread, reading only the events new since the last call."""
        items, size = shared_items(thread)
        # Most recently used last: a hit moves to the end, so eviction drops the longest unused.
        progress = self._progress.pop(id(items), None)
        if progress is None or progress.items is not items or progress.done > size:
            # An older, shorter thread on the same list (`done > size`) is rendered afresh.
            if len(self._progress) >= _PROGRESS_LIMIT:
                # A long-running worker renders many threads: keep memory bounded.
                del self._progress[next(iter(self._progress))]
            progress = _Progress(items)
        self._progress[id(items)] = progress
        is_secret = self._secret_test()
        keys = self.secret_keys
        redacts = is_secret is not None or bool(keys)
        plain = self._plain_keys
        resolver = progress.resolver if self.hide_resolved_errors else None
        hidden = progress.resolver.hidden
        fmt = cast(Literal["xml", "yaml"], self.format)
        sep = "\n\n" if self.format == "xml" else "\n"
        shown_ids, texts = progress.ids, progress.texts
        added: list[str] = []
        # One pass, the per-event steps of `_shown`, `_visible` and `event_to_prompt` inlined: a cold
        # render (a resumed thread of thousands of events) pays them for every event.
        for event in itertools.islice(items, progress.done, size):
            type_ = event.type
            data = event.data
            if resolver is not None and type_ in _RESOLUTION_EVENTS:
                resolver.feed(event)
            if type_ in _BOOKKEEPING:
                continue
            if isinstance(data, dict):
                if type_ == "tool_call" and data.get("prefetch"):
                    continue  # see `_shown`
                if "model" in data and type_ in MODEL_RECORD_EVENTS:
                    data = _without_model_record(event)
            if redacts:
                data = _redact_known(data, plain, is_secret, keys)
            text = _event_text(type_, data, fmt)
            shown_ids.append(event.id)
            texts.append(text)
            if event.id not in hidden:
                added.append(text)
        progress.done = size
        if len(hidden) != progress.hidden_seen:  # errors were resolved: drop them (and their calls)
            progress.text = sep.join(t for i, t in zip(shown_ids, texts, strict=True) if i not in hidden)
            progress.hidden_seen = len(hidden)
        elif added:
            # Extend the text rather than join every part again, so that a step's cost does not grow
            # with the thread. Held by this local alone, CPython grows the string in place.
            whole = progress.text
            progress.text = ""
            if whole:
                whole += sep
            whole += sep.join(added)
            progress.text = whole
        return progress.text

    def _secret_test(self) -> Callable[[str], bool] | None:
        pattern = cast(re.Pattern[str] | None, self.redact)
        return None if pattern is None else _secret_test(pattern)

    def _visible(self, thread: Thread) -> Thread:
        """The thread as the model may see it: resolved errors out, model records out, secrets redacted."""
        hidden = _resolved_errors(thread.events) if self.hide_resolved_errors else set[str]()
        is_secret = self._secret_test()
        cache = self._visible_cache
        events: list[Event] = []
        changed = bool(hidden)
        for event in thread.events:
            if event.id in hidden:
                continue
            hit = cache.get(event.id)
            if hit is not None and hit[0] is event:
                shown: Event = hit[1]
            else:
                data = _redact(_without_model_record(event), is_secret, self.secret_keys)
                shown = event if data is event.data else Event(event.type, data, id=event.id, at=event.at)
                _remember(cache, event.id, (event, shown))
            changed = changed or shown is not event
            events.append(shown)
        if not changed:
            return thread  # nothing to hide or redact: the thread as it is (no rebuild)
        return Thread(events, thread_id=thread.id, metadata=thread.metadata)


def render(
    thread: Thread,
    *,
    system: str | None = None,
    format: Format = "xml",
    renderers: Mapping[str, EventRenderer] | None = None,
    thread_to_prompt: ThreadRenderer | None = None,
    redact: re.Pattern[str] | str | None = DEFAULT_SECRET_PATTERN,
    secret_keys: Collection[str] = (),
    hide_resolved_errors: bool = True,
    max_tokens: int | None = None,
    compact: Compactor | None = None,
    counter: TokenCounter | None = None,
) -> list[Message]:
    """Render `thread` with these settings: `Context(...).render(thread, system=system)`."""
    context = Context(
        format=format,
        renderers=dict(renderers or {}),
        thread_to_prompt=thread_to_prompt,
        redact=redact,
        secret_keys=frozenset(secret_keys),
        hide_resolved_errors=hide_resolved_errors,
        max_tokens=max_tokens,
        compact=compact,
        counter=counter,
    )
    return context.render(thread, system=system)


def _without_model_record(event: Event) -> JsonValue:
    """The event's data minus the usage record of the call that produced it: bookkeeping, not context."""
    if model_record(event) is None:
        return event.data
    assert isinstance(event.data, dict)
    return {k: v for k, v in event.data.items() if k != "model"}


def _resolved_errors(events: Sequence[Event]) -> set[str]:
    """Ids of errors a later success resolved, and of the failed calls (and their approvals)."""
    resolver = _Resolver()
    for event in events:
        resolver.feed(event)
    return resolver.hidden


class _Resolver:
    """`_resolved_errors` as a left fold, so that a thread that grew is read on from where it was.

    `hidden` only ever grows: an error, once resolved, stays resolved.
    """

    __slots__ = ("approvals", "hidden", "model_failures", "tool_failures")

    def __init__(self) -> None:
        self.hidden: set[str] = set()
        self.tool_failures: dict[str, list[str]] = {}
        self.model_failures: list[str] = []
        self.approvals: dict[str, str] = {}  # call id -> the approval event's id

    def feed(self, event: Event) -> None:
        type_ = event.type
        if type_ not in _RESOLUTION_EVENTS:
            return  # most events (tool_started, results of other kinds, messages) play no part
        data = _fields(event)
        # Most events a long thread holds are calls and results while nothing has failed: they
        # return early here, without work that would find nothing to resolve.
        if type_ == "tool_response":
            if self.tool_failures:
                self.hidden.update(self.tool_failures.pop(str(data.get("intent")), []))
            return
        if type_ in _MODEL_EVENTS:
            if self.model_failures and not data.get("prefetch"):
                self.hidden.update(self.model_failures)
                self.model_failures.clear()
            return
        call_id = data.get("call_id")
        if type_ == "approval":
            if isinstance(call_id, str):
                self.approvals[call_id] = event.id
        elif data.get("source") == "model":  # an error the model made
            self.model_failures.append(event.id)
        else:  # an error a tool raised
            ids = self.tool_failures.setdefault(str(data.get("intent")), [])
            ids.append(event.id)
            if isinstance(call_id, str):
                ids += [call_id, *([self.approvals[call_id]] if call_id in self.approvals else [])]


class _Progress:
    """How far a context has rendered one shared event list (see `events.shared_items`)."""

    __slots__ = ("done", "hidden_seen", "ids", "items", "resolver", "text", "texts")

    def __init__(self, items: list[Event]) -> None:
        self.items = items
        self.done = 0  # events of `items` read so far
        self.resolver = _Resolver()
        # Each shown event's id and default text, in order: two lists rather than a list of pairs,
        # since a pair would be one more object per event for the garbage collector to walk.
        self.ids: list[str] = []
        self.texts: list[str] = []
        self.text = ""  # the `texts` whose event is not hidden, joined
        self.hidden_seen = 0  # the size of `resolver.hidden` that `text` reflects


_PROGRESS_LIMIT = 64


def _to_messages(thread: Thread) -> list[Message]:
    """Standard chat messages: every assistant tool call is answered by a `tool` message."""
    out: list[Message] = []
    for event in thread.events:
        data = _fields(event)
        match event.type:
            case "tool_call":
                arguments = json.dumps(data.get("arguments") or {}, ensure_ascii=False)
                call = ToolCall(id=event.id, name=str(data.get("intent")), arguments=arguments)
                out.append(Message("assistant", "", tool_calls=(call,)))
            case "tool_response":
                out.append(_tool_message(data, dump_yaml(data.get("result"), tables=True)))
            case "error" if data.get("source") == "model":
                out.append(Message("assistant", str(data.get("output", ""))))
                out.append(Message("user", f"Your last answer could not be used: {data.get('message')}"))
            case "error" if isinstance(data.get("call_id"), str):
                out.append(_tool_message(data, f"error: {data.get('message')}"))
            case "approval" if data.get("approved") is not True:
                out.append(_tool_message(data, f"rejected by a person: {data.get('feedback')}"))
            case "approval" | "tool_started":
                continue  # the result that follows says the call ran
            case "done_for_now" | "request_human_input" | "request_more_information":
                intent = {"intent": event.type, **{k: v for k, v in data.items() if k not in _INTERNAL_KEYS}}
                out.append(Message("assistant", json.dumps(intent, ensure_ascii=False)))
            case "user_input" if isinstance(data.get("text"), str) and len(data) == 1:
                out.append(Message("user", str(data["text"])))
            case "human_response":
                out.append(Message("user", str(data.get("text", ""))))
            case _:
                out.append(Message("user", event_to_prompt(event)))
    return out


def _tool_message(data: Mapping[str, JsonValue], content: str) -> Message:
    return Message("tool", content, tool_call_id=str(data.get("call_id")))
