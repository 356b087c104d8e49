"""LangGraph on the workload: the prebuilt ReAct agent, a fake chat model, SqliteSaver when persisted."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from importlib.metadata import version as installed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from harness import main
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.prebuilt import create_react_agent


class FakeToolModel(GenericFakeChatModel):
    """langchain_core's fake chat model, which replays given messages; the agent binds tools to it."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


@tool
def noop(i: int) -> dict[str, int]:
    """Return what it was given."""
    return {"ok": i}


def _script(n: int) -> Any:
    calls = [
        AIMessage(content="", tool_calls=[{"name": "noop", "args": {"i": i}, "id": f"call_{i}"}]) for i in range(n)
    ]
    return iter([*calls, AIMessage(content="finished")])


def _invoke(graph: Any, n: int, thread_id: str = "t") -> None:
    config = {"recursion_limit": 2 * n + 10, "configurable": {"thread_id": thread_id}}
    result = graph.invoke({"messages": [HumanMessage(f"call noop {n} times")]}, config)
    assert result["messages"][-1].content == "finished"


def make(n: int) -> Callable[[], None]:
    model = FakeToolModel(messages=_script(n))
    graph = create_react_agent(model, [noop])

    def run() -> None:
        model.messages = _script(n)
        _invoke(graph, n)

    return run


def run_persisted(n: int, path: str) -> None:
    db = sqlite3.connect(path, check_same_thread=False)
    try:
        _invoke(create_react_agent(FakeToolModel(messages=_script(n)), [noop], checkpointer=SqliteSaver(db)), n)
    finally:
        db.close()


def version() -> dict[str, str]:
    return {
        "name": "LangGraph",
        "version": f"langgraph {installed('langgraph')}, langgraph-checkpoint-sqlite "
        f"{installed('langgraph-checkpoint-sqlite')}, langchain-core {installed('langchain-core')}",
    }


if __name__ == "__main__":
    main(version, make, run_persisted)
