"""Effects recorded outside the store, so a test can count them whatever the workers and the store did.

Each effect is one line, `<idempotency key> <label> <pid>`, appended to the file named by
`THREADLOOM_EFFECTS_FILE` (O_APPEND: whole lines, even from many processes at once).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from threadloom.intents import idempotency_key


class Effect(NamedTuple):
    """One recorded effect."""

    key: str
    label: str
    pid: int


def record(label: str) -> None:
    """Record an effect of the tool call now running."""
    with open(os.environ["THREADLOOM_EFFECTS_FILE"], "a") as effects:
        effects.write(f"{idempotency_key()} {label} {os.getpid()}\n")


def read(path: Path) -> list[Effect]:
    """Every effect recorded in `path`, in order."""
    if not path.exists():
        return []
    return [
        Effect(key, label, int(pid)) for key, label, pid in (line.split() for line in path.read_text().splitlines())
    ]
