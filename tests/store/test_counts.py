"""`ThreadStore.counts`: every store's totals are `count_threads` of its threads."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom import Event, Thread
from threadloom.models import Usage
from threadloom.store import ThreadStore
from threadloom.store.base import STATUSES, StoreCounts, count_threads

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def model(name: str, tokens_in: JsonValue, tokens_out: JsonValue = 0) -> dict[str, JsonValue]:
    return {"name": name, "input_tokens": tokens_in, "output_tokens": tokens_out, "cached_tokens": 0}


def deploy(at: datetime) -> Thread:
    """A launch, a model call waiting 90 s for approval, a tool error, a question answered after 30 s."""
    call: dict[str, JsonValue] = {
        "intent": "deploy",
        "arguments": {},
        "policy": "approval",
        "model": model("gpt-4.1", 100, 7),
    }
    thread = Thread([Event("user_input", "go", at=at)], metadata={"agent": "bot"})
    thread = thread.append(Event("tool_call", call, at=at + timedelta(seconds=1)))
    thread = thread.append(
        Event("approval", {"call_id": thread.events[-1].id, "approved": True}, at=at + timedelta(seconds=91))
    )
    thread = thread.append(
        Event("error", {"source": "tool", "intent": "deploy", "message": "x"}, at=at + timedelta(seconds=92))
    )
    question: dict[str, JsonValue] = {"question": "which env?", "model": model("gpt-4.1", 50, 3)}
    thread = thread.append(Event("request_human_input", question, at=at + timedelta(seconds=100)))
    return thread.append(
        Event("human_response", {"request_id": thread.events[-1].id, "text": "prod"}, at=at + timedelta(seconds=130))
    )


async def test_counts_total_statuses_usage_tool_errors_and_waits(store: ThreadStore) -> None:
    assert await store.counts() == StoreCounts(dict.fromkeys(STATUSES, 0), {}, 0, 0, 0.0)
    first, second = deploy(T0), deploy(T0 + timedelta(hours=1))
    done = Thread([Event("user_input", "hi")], metadata={"agent": "bot"}).append(
        Event("done_for_now", {"message": "bye", "model": model("local", 10, 2)})
    )
    for thread in (first, second, done):
        await store.append(thread, after=0)
    counts = await store.counts()
    assert counts.threads == {**dict.fromkeys(STATUSES, 0), "ready": 2, "done": 1}
    assert counts.usage == {"gpt-4.1": Usage(300, 20, 0, requests=4), "local": Usage(10, 2, 0, requests=1)}
    assert (counts.tool_errors, counts.answered) == (2, 4)
    assert abs(counts.waited_seconds - 2 * (90 + 30)) < 0.01  # SQLite reads times to the millisecond
    assert replace(counts, waited_seconds=0) == replace(count_threads([first, second, done]), waited_seconds=0)


# Model records as events may hold them, well-formed or not: what `record_usage` counts as 0 must be 0 here.
_count = st.one_of(
    st.integers(-5, 10**12), st.booleans(), st.floats(0, 1e6), st.none(), st.text(max_size=3)
)  # SQLite's integers end at 2**63: no token count comes near
_record = st.one_of(
    st.builds(model, st.sampled_from(["a", "é", ""]), _count, _count),
    st.fixed_dictionaries({"name": st.one_of(st.integers(), st.none())}),
    st.text(max_size=3),
)


def _call(record: JsonValue) -> Event:
    return Event("tool_call", {"intent": "t", "arguments": {}, "policy": "auto", "model": record})


def _outside(record: JsonValue) -> Event:
    return Event("user_input", {"model": record})  # not a model answer: never counted


def _tool_error(record: JsonValue) -> Event:
    return Event("error", {"source": "tool", "model": record, "text": "\x00"})


def _error(source: str) -> Event:
    return Event("error", {"source": source})


def _approval(call_id: str) -> Event:
    return Event("approval", {"call_id": call_id, "approved": True})  # of nothing: not an answer


_event = st.one_of(
    st.builds(_call, _record),
    st.builds(_outside, _record),
    st.builds(_tool_error, _record),
    st.builds(_error, st.sampled_from(["model", "tool", "\x00"])),
    st.builds(lambda: Event("error", ["source", "tool"])),
    st.builds(_approval, st.sampled_from(["missing", "\x00"])),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(_event, max_size=6), min_size=1, max_size=3))
async def test_counts_read_odd_records_as_the_fold_does(store: ThreadStore, threads: list[list[Event]]) -> None:
    for events in threads:
        await store.append(Thread([Event("user_input", "x"), *events], metadata={"agent": "a"}), after=0)
    stored = [await store.load(s.thread_id) for s in await store.list(limit=10_000)]
    assert await store.counts() == count_threads(stored)  # no answers here, so no times to round


async def test_token_counts_past_64_bits_in_total_are_counted_not_an_error(store: ThreadStore) -> None:
    # Each count fits 64 bits; their sum does not (SQLite's sum() raised "integer overflow").
    for _ in range(2):
        done = Event("done_for_now", {"message": "m", "model": model("big", 2**62, 2**62)})
        await store.append(Thread([Event("user_input", "x"), done]), after=0)
    usage = (await store.counts()).usage["big"]
    assert (usage.input_tokens, usage.output_tokens, usage.requests) == (2**63, 2**63, 2)
    assert type(usage.input_tokens) is int
