from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel

from threadloom import Agent, Thread, tool
from threadloom.context import Message
from threadloom.intents import BUILTIN_INTENTS
from threadloom.models import ScriptedModel
from threadloom.prompts import (
    NEXT_STEP_QUESTION,
    NEXT_TOOL_QUESTION,
    PromptInput,
    default_prompt,
    describe_intents,
    schema_to_text,
)


class Issue(BaseModel):
    title: str
    priority: int | None = None


@tool(policy="approval")
def create_issue(issue: Issue, labels: list[str], team: Literal["core", "infra"] = "core") -> None:
    """Create an issue.

    Args:
        issue: what to file
    """


def test_describe_intents_is_compact_and_complete() -> None:
    text = describe_intents([create_issue.intent, *BUILTIN_INTENTS], frozenset({"create_issue"}))
    assert text.splitlines()[:2] == [
        "- create_issue: Create an issue. (a person approves it before it runs)",
        '  {"intent": "create_issue", "issue": {"title": string, "priority"?: integer | null} /* what to file */, '
        '"labels": [string, ...], "team"?: "core" | "infra"}',
    ]
    assert '"urgency"?: "low" | "medium" | "high"' in text


def test_schema_to_text_covers_the_shapes() -> None:
    assert schema_to_text({"type": "object", "additionalProperties": {"type": "integer"}}) == "{string: integer}"
    assert schema_to_text({"const": 3}) == "3"
    assert schema_to_text({}) == "any"


def test_a_boolean_schema_is_any_or_never_and_a_bare_dict_argument_runs() -> None:
    # JSON Schema's `true` and `false`: pydantic writes `additionalProperties: true` for a bare `dict`.
    assert schema_to_text({"type": "object", "additionalProperties": True}) == "{string: any}"
    assert schema_to_text({"type": "array", "items": False}) == "[never, ...]"
    assert schema_to_text({"anyOf": [True, {"type": "null"}]}) == "any | null"
    assert schema_to_text({"type": "object", "properties": {"x": False}}) == '{"x"?: never}'

    @tool
    def put(config: dict[str, Any], labels: dict[str, list[Any]] | None = None) -> str:
        """Store a config."""
        return f"stored {sorted(config)}"

    answers = ['{"intent": "put", "config": {"a": 1}}', '{"intent": "done_for_now", "message": "k"}']
    agent = Agent(name="a", model=ScriptedModel(answers), tools=[put])
    thread = agent.run_sync(Thread.start("user_input", {"text": "store it"}))
    assert [e.type for e in thread.events][-2:] == ["tool_response", "done_for_now"]
    assert thread.events[-2].data["result"] == "stored ['a']"  # type: ignore[index]
    assert '"config": {string: any}' in describe_intents([put.intent])


def test_a_type_that_holds_itself_is_written_once_then_by_name() -> None:
    class Node(BaseModel):
        name: str
        children: list["Node"] = []

    assert schema_to_text(Node.model_json_schema()) == '{"name": string, "children"?: [Node, ...]}'

    @tool
    def plan(root: Node) -> str:
        """Plan a tree of work."""
        return "ok"

    Agent(name="planner", model=ScriptedModel([]), tools=[plan])  # it describes its tools: no RecursionError


def test_default_prompt_ends_with_the_question() -> None:
    thread = Thread.start("user_input", "x")
    inputs = PromptInput(
        "Be useful.", thread, (Message("user", "<user_input>x</user_input>"),), BUILTIN_INTENTS, frozenset()
    )
    messages = default_prompt(inputs)
    assert messages[0].role == "system" and messages[0].content.startswith("Be useful.\n\n")
    assert messages[1] == Message("user", f"<user_input>x</user_input>\n\n{NEXT_STEP_QUESTION}")
    tool_last = PromptInput("", thread, (Message("tool", "ok", tool_call_id="c1"),), BUILTIN_INTENTS, frozenset())
    assert default_prompt(tool_last)[-1] == Message("user", NEXT_STEP_QUESTION)


def test_a_tool_calling_model_is_asked_for_one_tool_call_without_json_shapes() -> None:
    thread = Thread.start("user_input", "x")
    context = (Message("user", "<user_input>x</user_input>"),)
    inputs = PromptInput("Be useful.", thread, context, BUILTIN_INTENTS, frozenset(), strategy="tools")
    system, user = default_prompt(inputs)
    assert "calling exactly one tool" in system.content and "JSON" not in system.content
    assert "- done_for_now: Finish" in system.content and '{"intent"' not in system.content
    assert user == Message("user", f"<user_input>x</user_input>\n\n{NEXT_TOOL_QUESTION}")
    json_schema = default_prompt(replace(inputs, strategy="json_schema"))
    assert '{"intent": "done_for_now"' in json_schema[0].content
    assert json_schema[-1].content.endswith(NEXT_STEP_QUESTION)


@tool
def page_oncall(reason: str) -> None:
    """Page the on-call engineer (factors 7 and 11).

    Args:
        reason: why, in a sentence (factor 7)
    """


def test_the_model_reads_no_references_to_the_factor_pages() -> None:
    text = describe_intents([page_oncall.intent, *BUILTIN_INTENTS])
    assert "factor" not in text.lower()
    assert "- request_human_input: Ask a person a question and wait for the answer." in text.splitlines()
    assert "- page_oncall: Page the on-call engineer." in text.splitlines()
    assert '"reason": string /* why, in a sentence */' in text
    plain = describe_intents([page_oncall.intent], shapes=False)
    assert plain == "- page_oncall: Page the on-call engineer."
