from pathlib import Path

import pytest

from threadloom import Thread, UserError
from threadloom.store import SQLiteStore


async def test_normal_sync_is_a_choice_and_keeps_the_contract(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db", synchronous="NORMAL")
    assert store._db.execute("PRAGMA synchronous").fetchone() == (1,)  # pyright: ignore[reportPrivateUsage] - NORMAL
    thread = Thread.start("user_input", {"text": "hi"})
    await store.append(thread, after=0)
    assert await store.load(thread.id) == thread
    await store.aclose()


def test_other_sync_modes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="synchronous must be"):
        SQLiteStore(tmp_path / "t.db", synchronous="OFF")  # pyright: ignore[reportArgumentType]
