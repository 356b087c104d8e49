"""Context tokens: the same threads rendered as threadloom XML, YAML and chat-messages JSON.

Counted with `o200k_base` (bpe-openai, threadloom's `tokens` extra; the vocabulary ships in the
wheel, so this runs offline). Two counts per format:

- *model count*: what `threadloom.tokens.count_messages` counts, as providers bill chat messages:
  every message's content, tool-call names and arguments, and 4 tokens a message;
- *JSON text*: the tokens of the request's `messages` array written as JSON (OpenAI's wire shape).
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from threadloom import Event, Thread
from threadloom.context import Context, Format, Message
from threadloom.tokens import TokenCounter, count_messages, default_counter

FORMATS: tuple[Format, ...] = ("xml", "yaml", "messages")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def deploy_bot_thread() -> Thread:
    """The deploy bot's thread from examples/deploy_bot.py: prefetch, choice, approval, deploy, done."""
    spec = importlib.util.spec_from_file_location("deploy_bot", EXAMPLES / "deploy_bot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    agent: Any = module.build_agent()
    thread = agent.run_sync(
        Thread.start("slack_message", {"from": "@alex", "text": "deploy the backend to production"})
    )
    thread = agent.run_sync(thread.approve(thread.pending.id))
    assert thread.status == "done"
    return thread


def support_thread(steps: int = 50, seed: int = 7) -> Thread:
    """A support agent's thread: a customer's email, 49 tool calls with results of real size, done."""
    rng = random.Random(seed)
    products = ["Aurora desk lamp", "Nimbus standing desk", "Vega office chair", "Orion monitor arm", "Lyra keyboard"]
    thread = Thread.start(
        "email",
        {
            "from": "dana.whitfield@example.com",
            "subject": "Order 58213 arrived damaged, and I was charged twice",
            "text": "Hi, my order #58213 came yesterday. The desk's left leg is bent and the box was torn. "
            "I also see two charges of $649.00 on my card statement for the same order. "
            "Can you replace the leg or the desk, and refund the duplicate charge? Thanks, Dana",
        },
    )

    def order(number: int) -> dict[str, JsonValue]:
        items: list[JsonValue] = [
            {
                "sku": f"SKU-{rng.randint(10000, 99999)}",
                "name": rng.choice(products),
                "quantity": rng.randint(1, 3),
                "unit_price": round(rng.uniform(19, 700), 2),
                "status": rng.choice(["shipped", "delivered", "backordered"]),
            }
            for _ in range(rng.randint(2, 5))
        ]
        return {
            "order_id": number,
            "placed_at": f"2026-10-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
            "customer": {
                "id": "cus_48213",
                "name": "Dana Whitfield",
                "email": "dana.whitfield@example.com",
                "tier": "gold",
            },
            "shipping_address": {
                "line1": "2210 Larch Street",
                "city": "Portland",
                "region": "OR",
                "postal_code": "97205",
            },
            "items": items,
            "payments": [
                {
                    "charge_id": f"ch_{rng.getrandbits(48):012x}",
                    "amount": 649.0,
                    "currency": "USD",
                    "status": "captured",
                }
                for _ in range(rng.randint(1, 2))
            ],
            "notes": "Left at front door. Signature not required.",
        }

    def article() -> dict[str, JsonValue]:
        return {
            "results": [
                {
                    "article_id": f"kb-{rng.randint(100, 999)}",
                    "title": rng.choice(
                        [
                            "Damaged on arrival: replacement parts",
                            "Duplicate charges and pending authorisations",
                            "Return shipping labels",
                            "Warranty for furniture",
                            "Refund timelines by payment method",
                        ]
                    ),
                    "excerpt": "If an item arrives damaged, ask the customer for a photo of the damage and of the "
                    "shipping label, then create a replacement order for the damaged part at no charge. Parts "
                    "ship within 2 business days. Duplicate charges are usually a pending authorisation that "
                    "drops off within 5 business days; if both charges are captured, refund the second one.",
                    "updated_at": "2026-09-14",
                }
                for _ in range(3)
            ]
        }

    tools: list[tuple[str, Callable[[], dict[str, JsonValue]], Callable[[], JsonValue]]] = [
        ("get_order", lambda: {"order_id": 58213}, lambda: order(58213)),
        ("search_knowledge_base", lambda: {"query": rng.choice(["damaged desk leg", "duplicate charge"])}, article),
        ("list_charges", lambda: {"customer_id": "cus_48213"}, lambda: order(58213)["payments"]),
        (
            "get_shipment",
            lambda: {"order_id": 58213},
            lambda: {
                "carrier": "UPS",
                "tracking": f"1Z{rng.getrandbits(40):010X}",
                "status": "delivered",
                "events": [
                    {"at": f"2026-11-{d:02d}T09:00:00Z", "where": w, "what": "scanned"}
                    for d, w in zip(
                        range(10, 16),
                        ["Reno, NV", "Sacramento, CA", "Medford, OR", "Salem, OR", "Portland, OR", "Portland, OR"],
                        strict=True,
                    )
                ],
            },
        ),
    ]
    for i in range(steps - 1):
        name, arguments, result = tools[i % len(tools)]
        args: dict[str, JsonValue] = arguments()
        output: JsonValue = result()
        call = Event("tool_call", {"intent": name, "arguments": args, "policy": "auto"})
        thread = thread.append(call)
        thread = thread.append(Event("tool_started", {"call_id": call.id, "intent": name, "idempotency_key": call.id}))
        thread = thread.append(Event("tool_response", {"call_id": call.id, "intent": name, "result": output}))
    message = "I've refunded the duplicate charge and shipped a replacement leg; you'll get tracking by email."
    return thread.append(Event("done_for_now", {"message": message}))


def chat_json(thread: Thread) -> list[Message]:
    """Chat messages as the peers send them: threadloom's `messages` rendering, but every tool result
    is the result's JSON (LangGraph's ToolMessage, the OpenAI SDK's function_call_output, pydantic-ai's
    tool return) rather than threadloom's YAML."""
    results = {
        str(e.data.get("call_id")): e.data.get("result")
        for e in thread.events
        if e.type == "tool_response" and isinstance(e.data, dict)
    }
    return [
        Message("tool", json.dumps(results[m.tool_call_id], ensure_ascii=False), tool_call_id=m.tool_call_id)
        if m.role == "tool" and m.tool_call_id in results
        else m
        for m in Context(format="messages").render(thread)
    ]


def wire_json(messages: list[Message]) -> str:
    return json.dumps([m.to_dict() for m in messages], ensure_ascii=False)


def values_only(thread: Thread, counter: TokenCounter) -> int:
    """Tokens of every value the model must read, one a line, with no key, no event name, no structure.

    A floor for any rendering that keeps every value: keys, event names and separators come on top.
    """
    hidden = {"call_id", "policy", "prefetch", "model", "idempotency_key"}

    def leaves(value: JsonValue) -> list[str]:
        if isinstance(value, dict):
            return [leaf for k, v in value.items() if k not in hidden for leaf in leaves(v)]
        if isinstance(value, list):
            return [leaf for v in value for leaf in leaves(v)]
        return [] if value is None else [str(value)]

    return counter.count("\n".join(leaf for e in thread.events if e.type != "tool_started" for leaf in leaves(e.data)))


def measure(counter: TokenCounter) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for name, thread in (("deploy bot", deploy_bot_thread()), ("support, 50 steps", support_thread())):
        out[name] = {}
        for fmt in (*FORMATS, "chat_json"):
            messages = chat_json(thread) if fmt == "chat_json" else Context(format=fmt).render(thread)
            out[name][fmt] = {
                "model": count_messages(messages, counter),
                "json": counter.count(wire_json(messages)),
                "events": len(thread),
            }
    return out


def run(results: dict[str, dict[str, dict[str, int]]] | None = None) -> str:
    counter = default_counter()
    results = results if results is not None else measure(counter)
    lines = [
        "## Context tokens",
        "",
        f"Counted with `{counter.name}`{'' if counter.exact else ' (an ESTIMATE: install the tokens extra)'}. "
        "The same thread rendered by `Context(format=...)`;",
        "*model count* is what `count_messages` counts (contents, tool-call names and arguments, 4 a message:",
        "how providers bill chat messages, the count most favourable to chat JSON); *JSON text* counts the",
        "`messages` array written as JSON. The baseline is chat messages as the peers send them: tool calls as",
        "assistant `tool_calls`, each tool result as its JSON. Saving = 1 − format ÷ baseline.",
        "",
        "| thread | events | format | model count | saving | JSON text | saving |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, formats in results.items():
        base = formats["chat_json"]
        for fmt, counts in formats.items():
            label = {
                "xml": "threadloom XML",
                "yaml": "threadloom YAML",
                "messages": "threadloom chat messages (YAML results)",
                "chat_json": "**chat messages, JSON results** (baseline)",
            }[fmt]
            model_saving = 1 - counts["model"] / base["model"]
            json_saving = 1 - counts["json"] / base["json"]
            lines.append(
                f"| {name} | {counts['events']} | {label} | {counts['model']:,} | {model_saving:.0%} "
                f"| {counts['json']:,} | {json_saving:.0%} |"
            )
    floors: list[str] = []
    for name, thread in (("deploy bot", deploy_bot_thread()), ("support, 50 steps", support_thread())):
        if name in results:
            floor = values_only(thread, counter)
            floors.append(f"{name} {floor:,} ({floor / results[name]['chat_json']['model']:.0%})")
    lines += [
        "",
        "The values alone, one a line with no key, event name or structure, are about the least any rendering",
        f"that keeps every value can cost (tokens, and the share of the baseline's model count): {'; '.join(floors)}.",
        "XML and YAML bodies write lists of like objects as tables (keys once, one row an object); see",
        "docs/03-own-your-context-window.md.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(print(run()))
