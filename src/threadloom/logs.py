"""Structured logs of a run through stdlib `logging`: one record per event the loop appends.

Each record carries the thread id, the event's position in the thread, its type and id, and the
intent it concerns, as `extra` fields (`record.thread_id`, ...), so a JSON formatter or a log
pipeline can index them; the message is one readable line. Errors are logged at WARNING.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from threadloom import Agent, Event, Thread

__all__ = ["log_steps"]


def log_steps(agent: Agent, *, logger: logging.Logger | None = None, level: int = logging.INFO) -> Agent:
    """Make `agent` log each event its loop appends (its `after_step` hook, chained); returns the same agent.

    Example:
        ```python
        import logging

        from threadloom import Agent, Thread
        from threadloom.logs import log_steps
        from threadloom.models import ScriptedModel

        records: list[logging.LogRecord] = []
        logger = logging.getLogger("example")
        logger.addHandler(type("Keep", (logging.Handler,), {"emit": lambda self, r: records.append(r)})())
        logger.setLevel(logging.INFO)
        agent = log_steps(Agent(name="a", model=ScriptedModel(['{"intent": "done_for_now", "message": "hi"}'])), logger=logger)
        thread = agent.run_sync(Thread.start("user_input", {"text": "hi"}))
        assert [(r.getMessage(), r.__dict__["thread_id"]) for r in records] == [
            (f"thread {thread.id} event 2: done_for_now", thread.id)
        ]
        ```
    """
    out = logger or logging.getLogger("threadloom")
    inner = agent.after_step

    def log(thread: Thread, event: Event) -> Any:
        data = cast("dict[str, Any]", event.data) if isinstance(event.data, dict) else {}
        intent = data.get("intent")
        fields = {
            "thread_id": thread.id,
            "step": len(thread),
            "event_type": event.type,
            "event_id": event.id,
            "intent": intent,
            "agent": agent.name,
        }
        about = f" {intent}" if intent else ""
        if event.type == "error":
            out.warning(
                "thread %s event %d: error%s: %s", thread.id, len(thread), about, data.get("message"), extra=fields
            )
        else:
            out.log(level, "thread %s event %d: %s%s", thread.id, len(thread), event.type, about, extra=fields)
        return None if inner is None else inner(thread, event)

    agent.after_step = log
    return agent
