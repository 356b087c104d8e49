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
