"""The deploy workload as a LangGraph graph, served by LangGraph's own server (`langgraph dev`).

decide (stands in for the model's choice) -> approve (`interrupt()`: the run stops before the tool)
-> deploy (the effect: a line appended to the file `BENCH_EFFECTS_FILE` names, with the thread id).
A resume with `Command(resume="approve")` runs the deploy once; anything else skips it.
"""

from __future__ import annotations

import os
from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class State(TypedDict, total=False):
    text: str
    tag: str
    approved: bool
    result: str


def decide(state: State) -> State:
    return {"tag": "v1.2.3"}


def approve(state: State) -> State:
    decision = interrupt({"tool": "deploy_backend", "tag": state["tag"], "environment": "production"})
    return {"approved": decision == "approve"}


def deploy(state: State, config: RunnableConfig) -> State:
    if not state.get("approved"):
        return {"result": "rejected"}
    thread_id = config["configurable"]["thread_id"]
    with open(os.environ["BENCH_EFFECTS_FILE"], "a") as effects:  # O_APPEND: whole lines
        effects.write(f"{thread_id}\n")
    return {"result": f"deployed {state['tag']}"}


builder = StateGraph(State)
builder.add_node("decide", decide)
builder.add_node("approve", approve)
builder.add_node("deploy", deploy)
builder.add_edge(START, "decide")
builder.add_edge("decide", "approve")
builder.add_edge("approve", "deploy")
builder.add_edge("deploy", END)
graph = builder.compile()
