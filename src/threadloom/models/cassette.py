"""`Cassette`: record a model's answers into a readable YAML file, and replay them with no network.

A cassette is one file per test or eval suite. Each interaction holds the exact request (the model's
name, the rendered messages, the tool definitions, the intent names, the output schema and the
settings) and the completion it got (text, model, usage, latency, stop reason, strategy, error):

    version: 1
    strategy: prompted
    interactions:
    - request:
        model: gpt-4.1-mini
        messages:
        - role: system
          content: |-
            You are a deploy bot. ...
        ...
      response:
        text: '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'
        stop_reason: stop
        ...

Replay matches a request to the first unused interaction with an equal request, so concurrent cases
and repeats share one file; a request found nowhere fails loudly with `CassetteMismatch`, whose
message is a unified diff of the rendered prompt against the nearest recorded one. A completion is
replayed as it was recorded, stop reason and error included, so an answer cut off at `max_tokens`
is refused in replay exactly as it was live.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, cast, get_args

from ..exceptions import ThreadloomError, UserError
from .base import Completion, Model, ModelRequest, Strategy, Usage

__all__ = ["MODE_ENV", "Cassette", "CassetteMismatch", "CassetteMode", "render_request"]

CassetteMode = Literal["auto", "replay", "record", "update"]
"""What a cassette does with the model it wraps.

- `"replay"`: never call the model; a request not in the file raises `CassetteMismatch`.
- `"record"`: call the model for every request and write the file anew.
- `"update"`: replay what matches, call the model for what changed or is new, and write the file
  with exactly the interactions this run used (stale ones are dropped): re-records only what changed.
- `"auto"`: `"replay"` when the file exists, else `"record"`; `THREADLOOM_CASSETTES` overrides it.
"""
MODE_ENV = "THREADLOOM_CASSETTES"
"""The environment variable that sets the mode of every `"auto"` cassette (e.g. `update` in a re-record run)."""
_VERSION = 1

try:
    import yaml
except ImportError as exc:  # pragma: no cover - the extra is installed in the dev environment
    raise ImportError("threadloom.models.cassette needs PyYAML: pip install 'threadloom[evals]'") from exc


class CassetteMismatch(ThreadloomError, AssertionError):
    """A replayed request is not in the cassette; the message shows how it differs from the nearest one.

    An `AssertionError` so that pytest reports it as a failed test; not a `ModelError`, so the
    agent loop does not record it as a model failure and go on.

    Attributes:
        path: The cassette file.
        diff: The unified diff of the recorded request (`-`) against this run's request (`+`).
    """

    def __init__(self, message: str, *, path: Path, diff: str) -> None:
        super().__init__(message)
        self.path = path
        self.diff = diff


class Cassette:
    """Wraps a model to record its answers to a YAML file, or replays that file without the model.

    Example:
        ```python
        import asyncio
        import tempfile
        from pathlib import Path

        from threadloom import Agent, Thread
        from threadloom.models import ScriptedModel
        from threadloom.models.cassette import Cassette, CassetteMismatch

        path = Path(tempfile.mkdtemp()) / "hello.yaml"
        done = '{"intent": "done_for_now", "message": "hi"}'
        start = Thread.start("user_input", {"text": "hello"})
        with Cassette(path, ScriptedModel([done]), mode="record") as model:
            Agent(name="greeter", model=model).run_sync(start)

        # Replay needs no model: the answer comes from the file.
        with Cassette(path, mode="replay") as model:
            assert Agent(name="greeter", model=model).run_sync(start).status == "done"

        # A changed prompt is refused, with a diff of what changed.
        changed = Agent(name="greeter", model=Cassette(path, mode="replay"), instructions="Be terse.")
        try:
            asyncio.run(changed.next_step(start))
        except CassetteMismatch as exc:
            assert "+Be terse." in exc.diff
        ```
    """

    def __init__(
        self, path: str | os.PathLike[str], model: Model | None = None, *, mode: CassetteMode = "auto"
    ) -> None:
        """Open the cassette at `path` (it need not exist yet).

        Args:
            path: The YAML file.
            model: The model to record from; replay needs none.
            mode: See `CassetteMode`.

        Raises:
            UserError: An unknown mode, a mode that records without a model, or a file that is not a cassette.
        """
        if mode not in get_args(CassetteMode):
            raise UserError(f"Cassette mode {mode!r}: use one of {', '.join(get_args(CassetteMode))}")
        self.path = Path(path)
        """The cassette file."""
        if mode == "auto":
            override = os.environ.get(MODE_ENV, "")
            if override and override not in ("replay", "record", "update"):
                raise UserError(f"{MODE_ENV}={override!r}: use replay, record or update")
            mode = cast("CassetteMode", override) if override else ("replay" if self.path.exists() else "record")
        self.mode: CassetteMode = mode
        """The mode in effect (`"auto"` resolved)."""
        if mode != "replay" and model is None:
            raise UserError(f"Cassette {str(self.path)!r} in mode {mode!r} needs model= to record from")
        self.inner = model
        """The wrapped model (None when only replaying)."""
        recorded: list[dict[str, Any]] = []
        self._strategy: str = "prompted"
        if mode != "record" and self.path.exists():
            recorded, self._strategy = _load(self.path)
        elif mode == "replay":
            raise UserError(f"Cassette {str(self.path)!r} does not exist; record it first (mode='record')")
        if model is not None:
            self._strategy = str(getattr(model, "strategy", "prompted"))
        self.recorded: tuple[dict[str, Any], ...] = tuple(recorded)
        """The interactions the file held when opened, each `{"request": ..., "response": ...}`."""
        self._used = [False] * len(recorded)
        # Unused interactions by their request's canonical JSON, oldest first: a lookup, not a scan,
        # so a suite of thousands of cases replays in linear time.
        self._waiting: dict[str, list[int]] = {}
        for index, interaction in enumerate(recorded):
            self._waiting.setdefault(_key(interaction["request"]), []).append(index)
        self.interactions: list[dict[str, Any]] = []
        """The interactions of this run, in the order they were asked (what `save` writes)."""
        self.recorded_count = 0
        """How many requests this run sent to the wrapped model (0 in replay)."""

    @property
    def name(self) -> str:
        """The wrapped model's name, or in replay the name recorded with the first request."""
        if self.inner is not None:
            return self.inner.name
        return str(self.recorded[0]["request"]["model"]) if self.recorded else "cassette"

    @property
    def strategy(self) -> str:
        """How the model is asked (the agent's default prompt follows it); recorded in the file."""
        return self._strategy

    async def complete(self, request: ModelRequest) -> Completion:
        """The recorded answer to an equal request, or (recording) the wrapped model's answer.

        Raises:
            CassetteMismatch: Replaying, and no unused interaction has this request.
            ModelError: Recording, and the wrapped model could not answer (nothing is recorded).
        """
        if self.mode != "record":
            # Replay compares one canonical JSON text; the readable record is built only to write or diff.
            waiting = self._waiting.get(_request_key(self.name, request))
            if waiting:
                index = waiting.pop(0)
                self._used[index] = True
                self.interactions.append(self.recorded[index])
                return _completion(self.recorded[index]["response"])
            if self.mode == "replay":
                raise self._mismatch(request_record(self.name, request))
        wanted = request_record(self.name, request)
        assert self.inner is not None
        completion = await self.inner.complete(request)
        self.interactions.append({"request": wanted, "response": _response_record(completion)})
        self.recorded_count += 1
        return completion

    def save(self) -> None:
        """Write this run's interactions to the file (recording modes; replay writes nothing)."""
        if self.mode == "replay":
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {"version": _VERSION, "strategy": self._strategy, "interactions": self.interactions}
        self.path.write_text(dump(document), encoding="utf-8")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        # A failed run keeps the old file: half a run's interactions would drop what it did not reach.
        if kind is None:
            self.save()

    def _mismatch(self, wanted: dict[str, Any]) -> CassetteMismatch:
        unused = [i for i, used in enumerate(self._used) if not used]
        asked = len(self.interactions) + 1
        if not unused:
            message = (
                f"request {asked} is not in cassette {str(self.path)!r}: it holds {len(self.recorded)} "
                f"interactions and this run used them all. Re-record what changed with mode='update' "
                f"(or {MODE_ENV}=update)."
            )
            return CassetteMismatch(message + "\n" + render_request(wanted), path=self.path, diff="")
        mine = render_request(wanted).splitlines()
        nearest = max(
            unused,
            key=lambda i: difflib.SequenceMatcher(
                None, render_request(self.recorded[i]["request"]).splitlines(), mine
            ).ratio(),
        )
        recorded = render_request(self.recorded[nearest]["request"]).splitlines()
        diff = "\n".join(
            difflib.unified_diff(recorded, mine, f"cassette interaction {nearest + 1}", f"request {asked}", lineterm="")
        )
        message = (
            f"request {asked} differs from every unused interaction in cassette {str(self.path)!r}; "
            f"the nearest is interaction {nearest + 1}. Re-record what changed with mode='update' "
            f"(or {MODE_ENV}=update).\n{diff}"
        )
        return CassetteMismatch(message, path=self.path, diff=diff)


def request_record(model: str, request: ModelRequest) -> dict[str, Any]:
    """A request as the plain data a cassette stores and compares (JSON values only)."""
    record: dict[str, Any] = {
        "model": model,
        "messages": [message.to_dict() for message in request.messages],
        "intent_names": list(request.intent_names),
        "tools": [
            {"name": t.name, "description": t.description, "parameters": _plain(t.parameters)} for t in request.tools
        ],
        "settings": _plain(request.settings),
        "output_schema": _plain(request.output_schema),
    }
    return record


def render_request(record: Mapping[str, Any]) -> str:
    """A recorded request as the text a diff is taken of: the prompt first, as the model reads it.

    Example:
        ```python
        from threadloom.models.cassette import render_request

        text = render_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert text.splitlines() == ["model: m", "[user]", "hi"]
        ```
    """
    lines = [f"model: {record.get('model')}"]
    if record.get("settings"):
        lines.append(f"settings: {json.dumps(record['settings'], sort_keys=True)}")
    for message in record.get("messages", ()):
        lines.append(f"[{message.get('role')}]")
        lines.extend(str(message.get("content", "")).splitlines())
        for call in message.get("tool_calls", ()):
            lines.append(f"  tool call {json.dumps(call, sort_keys=True)}")
        if message.get("tool_call_id") is not None:
            lines.append(f"  (answers {message['tool_call_id']})")
    if record.get("intent_names"):
        lines.append(f"intents: {', '.join(record['intent_names'])}")
    for tool in record.get("tools", ()):
        lines.append(f"tool {tool.get('name')}: {tool.get('description')!r}")
        lines.extend("  " + line for line in json.dumps(tool.get("parameters"), indent=1, sort_keys=True).splitlines())
    if record.get("output_schema"):
        lines.append("output schema:")
        lines.extend("  " + line for line in json.dumps(record["output_schema"], indent=1, sort_keys=True).splitlines())
    return "\n".join(lines)


def _key(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False)


def _request_key(model: str, request: ModelRequest) -> str:
    """`_key(request_record(model, request))` in one `json.dumps` (replay's hot path)."""
    raw = {
        "model": model,
        "messages": [message.to_dict() for message in request.messages],
        "intent_names": request.intent_names,
        "tools": [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in request.tools],
        "settings": request.settings,
        "output_schema": request.output_schema,
    }
    return json.dumps(raw, sort_keys=True, ensure_ascii=False, default=dict)


def _plain(value: object) -> Any:
    """Mappings and tuples as the dicts and lists YAML reads back, so a loaded request compares equal."""
    return json.loads(json.dumps(value, default=dict))  # any Mapping (a MappingProxyType schema) as a dict


def _response_record(completion: Completion) -> dict[str, Any]:
    return {
        "text": completion.text,
        "model": completion.model,
        "usage": {
            "input_tokens": completion.usage.input_tokens,
            "output_tokens": completion.usage.output_tokens,
            "cached_tokens": completion.usage.cached_tokens,
        },
        "latency_ms": completion.latency_ms,
        "stop_reason": completion.stop_reason,
        "strategy": completion.strategy,
        "error": completion.error,
    }


def _completion(record: Mapping[str, Any]) -> Completion:
    usage = cast("Mapping[str, Any]", record.get("usage") or {})
    strategy: Strategy = record.get("strategy", "prompted")
    return Completion(
        str(record["text"]),
        str(record["model"]),
        usage=Usage(
            int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)), int(usage.get("cached_tokens", 0))
        ),
        latency_ms=float(record.get("latency_ms", 0.0)),
        stop_reason=record.get("stop_reason"),
        strategy=strategy,
        error=record.get("error"),
    )


# libyaml's parser where PyYAML was built with it (the same documents, the same safe constructors):
# a 7 MB cassette of 1,000 interactions loads about 4x faster (bench/bench_evals.py).
_Loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


def _load(path: Path) -> tuple[list[dict[str, Any]], str]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as exc:
        raise UserError(f"Cassette {str(path)!r} is not valid YAML: {exc}") from exc
    body = cast("dict[str, Any]", document) if isinstance(document, dict) else {}
    if not isinstance(body.get("interactions"), list):
        raise UserError(f"Cassette {str(path)!r} has no `interactions` list; is it a cassette?")
    interactions = cast("list[Any]", body["interactions"])
    for index, item in enumerate(interactions):
        if not isinstance(item, dict) or not {"request", "response"} <= set(cast("dict[str, Any]", item)):
            raise UserError(f"Cassette {str(path)!r}: interaction {index + 1} needs a request and a response")
    return cast("list[dict[str, Any]]", interactions), str(body.get("strategy", "prompted"))


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings as `|` blocks, so a prompt reads (and diffs) as the model gets it."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML falls back to a quoted scalar where a block cannot hold the string exactly (trailing
    # spaces), but with allow_unicode it writes NEL, LS, PS and CR raw, which a reader takes as line
    # breaks: any character that is not printable goes double-quoted, where PyYAML escapes it.
    if not all(c.isprintable() or c in "\n\t" for c in value):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)  # pyright: ignore[reportUnknownMemberType]


_Dumper.add_representer(str, _string)


def dump(document: object) -> str:
    """`document` as cassette YAML: keys in their order, long lines kept whole, prompts as blocks."""
    # The stubs leave `width`'s type partly unknown.
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000)  # pyright: ignore[reportUnknownMemberType]
