"""A tool's result over its `max_result_chars` never enters the thread: the model reads why instead."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom import Agent, Event, Thread, UserError, tool
from threadloom._result_limit import oversize
from threadloom.models import ScriptedModel
from threadloom.store._codec import encode_event

DONE = '{"intent": "done_for_now", "message": "done"}'
FETCH = '{"intent": "fetch", "url": "https://example.com/dump"}'
HUGE = "x" * 20_000_000


@tool
def fetch(url: str) -> str:
    """Fetch a page: this one is 20 MB of text."""
    return HUGE


def start() -> Thread:
    return Thread.start("user_input", {"text": "read the dump"})


def errors(thread: Thread) -> list[dict[str, JsonValue]]:
    return [e.data for e in thread.events if e.type == "error" and isinstance(e.data, dict)]


async def test_a_huge_result_is_an_error_the_model_reads_and_never_enters_the_thread() -> None:
    # Before: the 20 MB result was stored whole and rendered into every later request.
    model = ScriptedModel([FETCH, DONE])
    thread = await Agent(name="bot", model=model, tools=[fetch]).run(start())
    assert [e.type for e in thread.events][1:] == ["tool_call", "tool_started", "error", "done_for_now"]
    [error] = errors(thread)
    assert error["error_type"] == "ResultTooLarge" and error["intent"] == "fetch"
    assert error["message"] == (
        "`fetch` ran, but its result is 20,000,002 characters, over its limit of 100,000, and was not kept: "
        "do not run it again for the same; ask for less (a page, a summary) if it only reads "
        "(its developer can raise max_result_chars)"
    )
    assert len(thread.to_json()) < 10_000  # nothing of the result is kept
    seen = "".join(m.content for m in model.requests[-1].messages)
    assert "over its limit of 100,000" in seen and len(seen) < 10_000


async def test_an_oversized_result_counts_as_the_tools_failure_and_escalates_at_the_limit() -> None:
    thread = await Agent(name="bot", model=ScriptedModel([FETCH] * 3), tools=[fetch]).run(start())
    assert [e["error_type"] for e in errors(thread)] == ["ResultTooLarge"] * 3
    assert thread.status == "waiting_human" and "failed 3 times" in (thread.waiting_reason or "")


# Measured as the stored JSON text: `"a\"b"` is 6 characters for a 3-character string.
@pytest.mark.parametrize(("text", "stored"), [("a" * 8, True), ('a"b', True), ("a" * 9, False), ('a"bc', False)])
async def test_a_result_at_the_limit_is_stored_and_one_over_it_is_not(text: str, stored: bool) -> None:
    @tool(max_result_chars=10 if len(text) > 4 else 6)
    def echo(value: str) -> str:
        """Return the value."""
        return value

    call = json.dumps({"intent": "echo", "value": text})
    thread = await Agent(name="bot", model=ScriptedModel([call, DONE]), tools=[echo]).run(start())
    responses = [e.data for e in thread.events if e.type == "tool_response" and isinstance(e.data, dict)]
    assert [r["result"] for r in responses] == ([text] if stored else [])
    assert [e["error_type"] for e in errors(thread)] == ([] if stored else ["ResultTooLarge"])


async def test_a_structured_result_is_measured_as_its_json_text() -> None:
    @tool(max_result_chars=30)
    def rows(count: int) -> list[dict[str, int]]:
        """Some rows."""
        return [{"id": i} for i in range(count)]

    # [{"id":0},{"id":1}] is 19 characters; five rows are 46.
    calls = ['{"intent": "rows", "count": 2}', '{"intent": "rows", "count": 5}', DONE]
    thread = await Agent(name="bot", model=ScriptedModel(calls), tools=[rows]).run(start())
    assert [e.type for e in thread.events if e.type in ("tool_response", "error")] == ["tool_response", "error"]
    assert "is 46 characters, over its limit of 30" in str(errors(thread)[0]["message"])


async def test_none_stores_a_result_of_any_size() -> None:
    @tool(max_result_chars=None)
    def dump() -> str:
        """The whole dump."""
        return "y" * 200_000

    thread = await Agent(name="bot", model=ScriptedModel(['{"intent": "dump"}', DONE]), tools=[dump]).run(start())
    assert [e.type for e in thread.events][-2:] == ["tool_response", "done_for_now"]


async def test_a_result_too_odd_to_measure_is_left_to_the_events_own_check() -> None:
    @tool
    def big_number() -> list[int]:
        """A number of 5,001 digits, which Python will not write as text."""
        return [10**5000]

    thread = await Agent(name="bot", model=ScriptedModel(['{"intent": "big_number"}', DONE]), tools=[big_number]).run(
        start()
    )
    assert [e["error_type"] for e in errors(thread)] == ["ResultNotStorable"]


def noop() -> None:
    """Do nothing."""


def test_the_default_limit_and_bad_limits() -> None:
    assert fetch.max_result_chars == 100_000
    for bad in (0, -1, True, 2.5, "100"):
        with pytest.raises(UserError, match="max_result_chars"):
            tool(max_result_chars=bad)(noop)  # pyright: ignore[reportArgumentType]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(JSON)
def test_the_measured_length_is_the_stored_one(value: JsonValue) -> None:
    stored = len(encode_event(Event("tool_response", value))[2])
    assert oversize(value, stored) is None and oversize(value, stored - 1) == stored


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_a_strings_stored_length_is_within_the_bound_that_skips_measuring_it(text: str) -> None:
    assert len(text) + 2 <= len(encode_event(Event("tool_response", text))[2]) <= 6 * len(text) + 2
