"""Opening a new SQLite file from two connections at once: both end in WAL mode, neither is refused."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from threadloom.store._sqlite_schema import use_wal


def test_two_openers_of_a_new_file_at_once_both_get_wal(tmp_path: Path) -> None:
    # Before: the second `PRAGMA journal_mode=WAL` raised "database is locked" in about one race of five.
    errors: list[str] = []
    for n in range(100):
        path = tmp_path / f"{n}.db"
        barrier = threading.Barrier(2)
        modes: list[str] = []

        def opener(path: Path = path, barrier: threading.Barrier = barrier, modes: list[str] = modes) -> None:
            db = sqlite3.connect(path, isolation_level=None, timeout=30)
            try:
                barrier.wait()
                use_wal(db, 30)
                modes.append(db.execute("PRAGMA journal_mode").fetchone()[0])
            except sqlite3.Error as exc:
                errors.append(str(exc))
            finally:
                db.close()

        openers = [threading.Thread(target=opener) for _ in range(2)]
        for t in openers:
            t.start()
        for t in openers:
            t.join()
        assert errors == [] and modes == ["wal", "wal"], (n, errors, modes)
