import json
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Discriminator, Field, TypeAdapter, ValidationError

from threadloom import DoneForNow, Intent, ParseError, RequestMoreInformation, parse
from threadloom.parsing import MAX_TEXT_LENGTH, parse_json_schema

FENCE = "`" * 3


class DeployBackend(Intent):
    intent: Literal["deploy_backend"] = "deploy_backend"
    tag: str
    environment: Literal["staging", "production"] = "staging"
    replicas: int = 1
    dry_run: bool = False


class ListGitTags(Intent):
    intent: Literal["list_git_tags"] = "list_git_tags"


Step = Annotated[DeployBackend | ListGitTags | DoneForNow | RequestMoreInformation, Discriminator("intent")]


class Color(Enum):
    RED = "red"
    GREEN = "green"


class Palette(BaseModel):
    colors: list[Color]
    note: str | None
    weight: float = 1.0


@dataclass
class Point:
    x: int
    y: int


def test_plain_json() -> None:
    assert parse('{"intent": "list_git_tags"}', Step) == ListGitTags()


def test_markdown_fence_and_prose_around() -> None:
    text = f'Sure, deploying now.\n{FENCE}json\n{{"intent": "deploy_backend", "tag": "v1.2.3"}}\n{FENCE}\nLet me know!'
    assert parse(text, Step) == DeployBackend(tag="v1.2.3")


def test_prose_without_fence() -> None:
    text = 'I will finish here: {"intent": "done_for_now", "message": "Deployed."} Thanks.'
    assert parse(text, Step) == DoneForNow(message="Deployed.")


@pytest.mark.parametrize(
    "text",
    [
        '{"intent": "deploy_backend", "tag": "v1",}',  # trailing comma
        "{'intent': 'deploy_backend', 'tag': 'v1'}",  # single quotes
        '{intent: "deploy_backend", tag: "v1"}',  # unquoted keys
        '{"intent": "deploy_backend", // the tool\n "tag": "v1" /* newest */}',  # comments
        '{"intent": "deploy_backend", "tag": "v1"',  # truncated
    ],
)
def test_broken_json_is_repaired(text: str) -> None:
    assert parse(text, Step) == DeployBackend(tag="v1")


def test_numbers_and_booleans_given_as_strings() -> None:
    text = '{"intent": "deploy_backend", "tag": 123, "replicas": "3", "dry_run": "true"}'
    assert parse(text, Step) == DeployBackend(tag="123", replicas=3, dry_run=True)


def test_enum_and_literal_values_in_the_wrong_case() -> None:
    text = '{"intent": "deploy_backend", "tag": "v1", "environment": "PRODUCTION"}'
    assert parse(text, Step) == DeployBackend(tag="v1", environment="production")
    assert parse('{"colors": ["RED", "Green"], "note": null}', Palette) == Palette(
        colors=[Color.RED, Color.GREEN], note=None
    )


@pytest.mark.parametrize("name", ["Deploy-Backend", "DEPLOY_BACKEND", "deployBackend", "deploy backend"])
def test_the_union_member_is_picked_by_a_loosely_written_intent_name(name: str) -> None:
    assert parse(json.dumps({"intent": name, "tag": "v1"}), Step) == DeployBackend(tag="v1")


def test_wrapped_arguments_and_name_as_key() -> None:
    assert parse('{"intent": "deploy_backend", "arguments": {"tag": "v1"}}', Step) == DeployBackend(tag="v1")
    assert parse('{"deploy_backend": {"tag": "v1"}}', Step) == DeployBackend(tag="v1")


def test_several_objects_take_the_first_that_fits() -> None:
    text = 'Thinking: {"plan": "deploy"}\nAnswer: {"intent": "deploy_backend", "tag": "v2"} {"intent": "list_git_tags"}'
    assert parse(text, Step) == DeployBackend(tag="v2")


def test_one_object_where_a_list_is_expected() -> None:
    assert parse('{"x": 1, "y": 2}', list[Point]) == [Point(1, 2)]
    assert parse("[[1, 2]]", list[list[int]]) == [[1, 2]]


def test_missing_optional_fields_take_defaults_or_null() -> None:
    assert parse('{"colors": ["red"]}', Palette) == Palette(colors=[Color.RED], note=None, weight=1.0)


def test_primitives_literals_and_strings() -> None:
    assert parse("The answer is 42.", int) == 42
    assert parse('"7"', int) == 7
    assert parse("**Green** is my pick", Color) == Color.GREEN
    assert parse("yes", bool) is True
    assert parse(" keep  this as is ", str) == " keep  this as is "
    assert parse("production", Literal["staging", "production"]) == "production"


def test_unknown_intent_message_names_the_choices() -> None:
    with pytest.raises(ParseError) as info:
        parse('{"intent": "launch_rockets"}', Step)
    assert str(info.value) == (
        "unknown intent 'launch_rockets'; \"intent\" must be one of: deploy_backend, list_git_tags, "
        "done_for_now, request_more_information"
    )
    assert info.value.text == '{"intent": "launch_rockets"}'


def test_missing_required_field_message() -> None:
    with pytest.raises(ParseError, match=r"^deploy_backend: field `tag` is required$"):
        parse('{"intent": "deploy_backend"}', Step)


def test_prose_only_message() -> None:
    with pytest.raises(ParseError) as info:
        parse("I think we should deploy the backend.", Step)
    assert str(info.value) == (
        'expected one JSON object whose "intent" is one of: deploy_backend, list_git_tags, done_for_now, '
        "request_more_information; got text with no usable JSON"
    )
    with pytest.raises(ParseError, match="got an empty answer"):
        parse("   ", Step)


def test_ambiguous_choices_are_refused() -> None:
    with pytest.raises(ParseError):
        parse("Either red or green.", Color)


def test_huge_and_non_text_input_is_refused_quickly() -> None:
    with pytest.raises(ParseError, match="characters; answer with one short JSON object"):
        parse("{" * (MAX_TEXT_LENGTH + 1), Step)
    with pytest.raises(ParseError, match="got a bytes"):
        parse(b"{}", Step)  # pyright: ignore[reportCallIssue, reportArgumentType]


def test_a_validator_that_raises_is_still_a_parse_error() -> None:
    class Odd(BaseModel):
        n: int = Field(gt=0)

    with pytest.raises(ParseError, match="greater than 0"):
        parse('{"n": -1}', Odd)


def test_an_unsupported_type_is_a_parse_error() -> None:
    class NotAModel:
        pass

    with pytest.raises(ParseError, match="cannot parse into"):
        parse("{}", NotAModel)


def test_parse_json_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city"],
    }
    assert parse_json_schema("{city: 'Paris', days: '3'}", schema) == {"city": "Paris", "days": 3}
    with pytest.raises(ParseError):
        parse_json_schema('{"city": "Paris", "days": 0}', schema)
    assert parse_json_schema("[1, 2,]", {}) == [1, 2]
    assert parse_json_schema("anything", {"type": "string"}) == "anything"
    assert parse_json_schema("true", True) is True  # pyright: ignore[reportArgumentType]


# -- properties ---------------------------------------------------------------------------

STEP = TypeAdapter(Step)
json_texts = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
).map(json.dumps)


def _mutate(text: str, cut: int, junk: str) -> str:
    cut = cut % (len(text) + 1)
    return text[:cut] + junk + text[cut:]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200), json_texts, st.builds(_mutate, json_texts, st.integers(0, 50), st.text(max_size=5))
    )
)
def test_parse_returns_a_valid_value_or_raises_parse_error(text: str) -> None:
    try:
        value = parse(text, Step)
    except ParseError:
        return
    STEP.validate_python(value)  # never a value that violates the schema


intents = st.one_of(
    st.builds(
        DeployBackend,
        tag=st.text(min_size=1, max_size=20),
        environment=st.sampled_from(["staging", "production"]),
        replicas=st.integers(0, 100),
        dry_run=st.booleans(),
    ),
    st.builds(DoneForNow, message=st.text(max_size=40)),
    st.just(ListGitTags()),
)


@settings(max_examples=200, deadline=None)
@given(intents, st.sampled_from(["{}", "Here you go:\n{}", f"{FENCE}json\n{{}}\n{FENCE}", "{}\nDone."]))
def test_a_dumped_intent_parses_back_equal(intent: Any, frame: str) -> None:
    text = frame.replace("{}", intent.model_dump_json(), 1)
    assert parse(text, Step) == intent


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_parse_json_schema_only_raises_parse_error(text: str) -> None:
    schema = {"type": "array", "items": {"enum": ["a", "b"]}}
    try:
        value = parse_json_schema(text, schema)
    except ParseError:
        return
    assert isinstance(value, list) and all(v in ("a", "b") for v in value)


def test_validation_error_is_never_leaked() -> None:
    try:
        parse('{"intent": "deploy_backend", "tag": {"nested": 1}}', Step)
    except ValidationError:  # pragma: no cover - the point of the test
        pytest.fail("a pydantic ValidationError escaped")
    except ParseError as error:
        assert "tag" in str(error)
