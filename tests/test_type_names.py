from typing import Literal

import pytest

from threadloom import Agent, Event, Runtime, UserError, tool
from threadloom._type_names import type_name
from threadloom.models import ScriptedModel
from threadloom.store import MemoryStore


def test_a_parameters_type_is_named_whole() -> None:
    assert type_name(Literal["staging", "production"]) == "Literal['staging', 'production']"
    assert [type_name(int), type_name(list[str]), type_name(str | None)] == ["int", "list[str]", "str | None"]


async def test_an_edit_refused_lists_the_parameters_types_whole() -> None:
    # The API's and the Runtime's refusal listed `environment: Literal`, the values it takes cut off.
    @tool(policy="approval")
    def deploy(tag: str, environment: Literal["staging", "production"]) -> str:
        """Deploy a tag."""
        return tag

    call = '{"intent": "deploy", "tag": "v1", "environment": "staging"}'
    runtime = Runtime(store=MemoryStore(), agents=[Agent(name="d", model=ScriptedModel([call]), tools=[deploy])])
    thread_id = await runtime.launch("d", Event("user_input", "ship"))
    await runtime.run_until_idle()
    thread = await runtime.get(thread_id)
    assert thread.pending is not None
    with pytest.raises(UserError, match=r"environment: Literal\['staging', 'production'\]"):
        await runtime.approve(thread_id, thread.pending.id, {"environment": "moon"})
