"""The test session's own PostgreSQL: where the server binaries are found, and the cluster's life."""

import asyncio
import os
import re
from pathlib import Path

import psycopg
import pytest

from _postgres import server_bindir, throwaway_cluster
from threadloom import Thread
from threadloom.store.postgres import PostgresStore


def _server_tools(bindir: Path, tools: tuple[str, ...] = ("initdb", "pg_ctl", "postgres")) -> Path:
    bindir.mkdir(parents=True)
    for tool in tools:
        (bindir / tool).write_text("#!/bin/sh\n")
        (bindir / tool).chmod(0o755)
    return bindir


def test_the_path_s_server_is_found_through_its_links(tmp_path: Path) -> None:
    real = _server_tools(tmp_path / "lib/postgresql/16/bin")
    on_path = tmp_path / "bin"
    on_path.mkdir()
    (on_path / "initdb").symlink_to(real / "initdb")
    _server_tools(tmp_path / "other/17/bin")
    assert server_bindir(path=str(on_path), pattern=str(tmp_path / "other/*/bin")) == real


def test_off_the_path_the_newest_major_version_is_taken(tmp_path: Path) -> None:
    for version in ("9.6", "15", "16"):
        _server_tools(tmp_path / version / "bin")
    _server_tools(tmp_path / "17/bin", tools=("initdb", "pg_ctl"))  # a client-only install has no server
    empty = tmp_path / "empty"
    empty.mkdir()
    assert server_bindir(path=str(empty), pattern=str(tmp_path / "*/bin")) == tmp_path / "16/bin"


def test_without_server_binaries_there_is_none(tmp_path: Path) -> None:
    _server_tools(tmp_path / "bin", tools=("initdb",))
    assert server_bindir(path=str(tmp_path / "bin"), pattern=str(tmp_path / "*/nothing")) is None


async def _round_trip(url: str, thread: Thread) -> Thread:
    store = await PostgresStore.open(url)
    try:
        await store.append(thread, after=0)
        return await store.load(thread.id)
    finally:
        await store.aclose()


def test_a_throwaway_cluster_serves_a_store_and_is_gone_afterwards() -> None:
    bindir = server_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries on this machine")
    with throwaway_cluster(bindir) as url:
        assert re.fullmatch(r"postgresql://postgres@127\.0\.0\.1:\d+/test", url)
        thread = Thread.start("user_input", "hi")
        assert asyncio.run(_round_trip(url, thread)) == thread
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT current_setting('data_directory')").fetchone()
        assert row is not None
        data = Path(row[0])
        assert data.is_dir()
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to another account
            assert data.stat().st_uid != 0
    assert not data.parent.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
