"""What several routes take the same way: the thread id in the path, the `Idempotency-Key` header, a replay's answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Response

__all__ = ["NO_NUL", "REPLAYED", "IdempotencyKey", "ThreadId", "replayed"]

REPLAYED = "Idempotent-Replayed"
"""The header a replayed request's answer carries (`true`)."""

NO_NUL = r"^[^\x00]+$"
"""What a text that reaches the store must match: PostgreSQL cannot hold a NUL, and would fail (a 503) on one."""

ThreadId = Annotated[str, Path(max_length=200, pattern=NO_NUL, description="The thread's id.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Send the request at most once: a repeat with the same key is a replay; with another body, a 409.",
    ),
]


def replayed(response: Response) -> None:
    """Answer a replay: 200 (not 201) and `Idempotent-Replayed: true`."""
    response.status_code = 200
    response.headers[REPLAYED] = "true"
