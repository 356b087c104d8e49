"""Eval cases from YAML and JSONL files and from threads saved in a store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from threadloom import Agent, Event, Thread, UserError
from threadloom.evals import (
    NextIntent,
    OneOf,
    Outcome,
    Range,
    Regex,
    case_from_store,
    case_record,
    evaluate_sync,
    load_cases,
    parse_expect,
)
from threadloom.models import ScriptedModel
from threadloom.store import MemoryStore

CASES = """
- name: deploys the newest tag
  events:
    - type: slack_message
      data: {text: deploy the backend to production}
  expect:
    intent: deploy_backend
    fields:
      tag: v1.2.3
      environment: {one_of: [staging, production]}
      replicas: {range: [1, null]}
      note: {regex: "^ok"}
- name: finishes
  events:
    - {type: user_input, data: {text: hi}}
  expect:
    intent: {one_of: [done_for_now, request_more_information]}
    outcome: {status: done, tools: []}
"""


def test_a_yaml_case_file_gives_cases_with_their_checks(tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(CASES)
    first, second = load_cases(path)
    assert first.name == "deploys the newest tag" and first.thread.events[0].type == "slack_message"
    assert first.checks == [
        NextIntent(
            "deploy_backend",
            tag="v1.2.3",
            environment=OneOf("staging", "production"),
            replicas=Range(1, math.inf),
            note=Regex("^ok"),
        )
    ]
    assert second.checks == [NextIntent(OneOf("done_for_now", "request_more_information")), Outcome("done", [])]
    assert second.needs_run and not first.needs_run


def test_a_jsonl_case_file_holds_one_case_a_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    lines = [
        {"name": "a", "events": [{"type": "user_input", "data": {"text": "hi"}}], "expect": {"intent": "done_for_now"}},
        {"name": "b", "events": [{"type": "user_input", "data": "yo"}], "expect": {"outcome": {"status": "done"}}},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    cases = load_cases(path)
    agent = Agent(name="bot", model=ScriptedModel(['{"intent": "done_for_now", "message": "hi"}'] * 2))
    assert evaluate_sync(agent, cases).pass_rate == 1.0


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{}", "holds a list of cases"),
        ("- {events: [{type: a}], expect: {intent: x}}", "needs a `name`"),
        ("- {name: a, expect: {intent: x}}", "give its thread"),
        ("- {name: a, events: [{type: a}]}", "nothing to check"),
        (
            "- {name: a, events: [{type: a}], expect: {intent: x}}\n- {name: a, events: [{type: a}], expect: {intent: x}}",
            "repeat",
        ),
        ("- {name: a, events: [{type: a}], expect: {intnet: x}}", "unknown keys"),
        ("- {name: a, events: [{type: a}], expect: {fields: {a: 1}}}", "needs an `intent`"),
        ("- {name: a, events: [{type: a}], expect: {intent: {like: x}}}", "unknown matcher"),
        ("- {name: a, events: [{type: a}], expect: {outcome: {tool: [x]}}}", "unknown keys"),
    ],
)
def test_a_broken_case_file_says_what_is_wrong(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=error):
        load_cases(path)


async def test_a_case_from_a_stored_thread_is_cut_after_the_event_and_written_back(tmp_path: Path) -> None:
    store = MemoryStore()
    thread = Thread.start("user_input", {"text": "deploy"})
    cut = thread.events[0].id
    thread = thread.append(Event("done_for_now", {"message": "no"}))
    await store.append(thread, after=0)
    case = await case_from_store(store, thread.id, at=cut, expect={"intent": "request_more_information"})
    assert case.name == f"{thread.id}@{cut}" and len(case.thread.events) == 1 and case.thread.id == thread.id
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(case_record(case)) + "\n")
    [loaded] = load_cases(path)
    assert loaded.thread == case.thread and loaded.checks == parse_expect({"intent": "request_more_information"})
    with pytest.raises(UserError, match="nothing to check"):
        await case_from_store(store, thread.id, expect={})


CASE = "- {name: a, events: [{type: user_input}], expect: %s}"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("- just a line", "cases.yaml[0]: a case is a mapping with a `name`, got 'just a line'"),
        ("- {name: a, events: [{data: 1}], expect: {intent: x}}", "case 'a': event 0 needs a `type`"),
        ("- {name: a, events: [hi], expect: {intent: x}}", "case 'a': event 0 is 'hi', not a {type, data} mapping"),
        ("- {name: a, events: {type: x}, expect: {intent: x}}", "case 'a': `events` is a list of {type, data}"),
        ("- {name: a, events: [{type: A B}], expect: {intent: x}}", "case 'a': event type 'A B' must be snake_case"),
        ("- {name: a, events: [{type: a}], metadata: [1], expect: {intent: x}}", "case 'a': `metadata` is a mapping"),
        ("- {name: a, thread: {events: 3}, expect: {intent: x}}", "case 'a': its `thread` is not a thread: "),
        (CASE % "[intent]", "case 'a': `expect` is a mapping of intent, fields and outcome, got ['intent']"),
        (CASE % "{intent: x, fields: [tag]}", "case 'a': expect.fields is a mapping of field -> value, got ['tag']"),
        (CASE % "{outcome: done}", "case 'a': expect.outcome is a mapping of status and tools, got 'done'"),
        (CASE % "{outcome: {tools: deploy}}", "case 'a': expect.outcome.tools is a list of tool names, got 'deploy'"),
        (CASE % "{intent: x, fields: {n: {range: [1]}}}", "case 'a': expect 'n': range is [min, max] (null for an"),
        (CASE % "{intent: x, fields: {n: {range: [a, 2]}}}", "case 'a': expect 'n': range is [min, max] (null for"),
        (CASE % "{intent: x, fields: {n: {one_of: 3}}}", "case 'a': expect 'n': one_of is a list of values, got 3"),
        (CASE % "{intent: x, fields: {n: {regex: [a]}}}", "case 'a': expect 'n': regex is a pattern, got ['a']"),
        # Before: a status no thread has and a pattern that does not compile were loaded, to fail every run.
        (CASE % "{outcome: {status: happy}}", "case 'a': expect.outcome.status is a thread status (ready, waiting"),
        (CASE % "{intent: x, fields: {n: {regex: '(['}}}", "case 'a': expect 'n': the pattern '([' is not a regular"),
        ("- {name: a, events: [{type: a}]\n", "'cases.yaml' is not YAML: "),
    ],
)
def test_a_malformed_case_record_is_a_user_error_that_names_it(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as refused:
        load_cases(path)
    assert str(refused.value).startswith(error), str(refused.value)


def test_a_jsonl_line_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"name": "a"}\n\n{"name": \n')
    with pytest.raises(UserError, match=r"^'cases.jsonl' line 3 is not JSON: "):
        load_cases(path)
