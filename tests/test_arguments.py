"""An intent's arguments as the log records them: JSON, with each secret as the model wrote it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, SecretBytes, SecretStr

from threadloom import tool
from threadloom._arguments import intent_arguments


class Pin(BaseModel):
    digits: SecretStr
    label: str = ""


@tool
def sign_in(user: str, password: SecretStr, pins: list[Pin], code: SecretBytes | None = None) -> str:
    """Sign in."""
    return "ok"


@tool
def deploy(tag: str, replicas: int = 2) -> str:
    """Deploy."""
    return "ok"


def test_secrets_at_any_depth_keep_their_values_and_the_rest_is_json() -> None:
    intent = sign_in.intent.model_validate(
        {
            "intent": "sign_in",
            "user": "ada",
            "password": "hunter22",
            "pins": [{"digits": "1234", "label": "**********"}, {"digits": ""}],
            "code": "opensesame",
        }
    )
    assert intent_arguments(intent) == {
        "user": "ada",
        "password": "hunter22",
        "pins": [{"digits": "1234", "label": "**********"}, {"digits": "", "label": ""}],
        "code": "opensesame",
    }


def test_an_intent_without_secrets_is_its_json_dump() -> None:
    intent = deploy.intent.model_validate({"intent": "deploy", "tag": "**********"})
    assert intent_arguments(intent) == {"tag": "**********", "replicas": 2}


@given(user=st.text(), password=st.text(), digits=st.lists(st.text(), max_size=3))
def test_every_value_is_kept_as_given(user: str, password: str, digits: list[str]) -> None:
    pins = [{"digits": d, "label": d} for d in digits]
    intent = sign_in.intent.model_validate({"intent": "sign_in", "user": user, "password": password, "pins": pins})
    assert intent_arguments(intent) == {"user": user, "password": password, "pins": pins, "code": None}
