"""`threadloom serve` as a process: it starts only with a key, reads its config file, drains on SIGTERM, shows no secret."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import httpx
from serve_agents import deploy_bot
from serve_support import ENV, TESTS, Server, wait_for
from serving import ADMIN, READER, SECRET, WRITER

from threadloom import Event, Runtime, Thread
from threadloom.server import listen, read_settings
from threadloom.server._links import answer_url
from threadloom.store import open_store
from workers.effects import read
from workers.started import wait_started

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HOOK_SECRET = "whsec_aG9vay1zZWNyZXQtaW4tdGhlLWZpbGU="
HOOK_ENV_SECRET = "whsec_aG9vay1zZWNyZXQtZnJvbS10aGUtZW52"


def _serve(
    *options: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "threadloom.cli", "serve", "--agents", "serve_agents:deploy_bot", "--port", "0"]
    return subprocess.run(
        [*command, *options],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **ENV, **(env or {})},
        cwd=cwd,
    )


def _waiting(url: str, *, approve: bool = False) -> Thread:
    """A deploy thread run until it waits for approval (and approved, if asked), written to the store at `url`."""

    async def main() -> Thread:
        async with Runtime(store=url, agents=[deploy_bot()]) as runtime:
            thread_id = await runtime.launch("deploy_bot", Event("slack_message", {"text": "deploy to production"}))
            await runtime.run_until_idle()
            thread = await runtime.get(thread_id)
            if approve:
                assert thread.pending is not None
                thread = await runtime.approve(thread_id, thread.pending.id, by="key:admin")
            return thread

    return asyncio.run(main())


def _launched_late(url: str) -> list[Event]:
    async def main() -> list[Event]:
        async with Runtime(store=url) as runtime:
            threads = [await runtime.get(s.thread_id) for s in await runtime.list()]
        return [t.events[0] for t in threads if t.events[0].data == {"text": "late"}]

    return asyncio.run(main())


def _get(url: str, thread_id: str) -> Thread:
    async def main() -> Thread:
        async with Runtime(store=url) as runtime:
            return await runtime.get(thread_id)

    return asyncio.run(main())


def test_without_a_key_it_refuses_to_start_and_says_how_to_make_one(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/t.db"
    refused = _serve("--store", store, env={"THREADLOOM_API_KEYS": ""})
    assert refused.returncode == 2 and refused.stdout == ""
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: no API key")
    # the command to paste makes the key in the store this server reads, not in ./threadloom.db
    assert f"`threadloom keys create NAME --scopes read,write,approve --store {store}`" in line
    assert "THREADLOOM_API_KEYS=" in line


def test_a_file_of_another_program_is_refused_in_one_line_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with closing(sqlite3.connect(path)) as db:
        db.executescript("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada');")
    before = path.read_bytes()
    refused = _serve("--store", f"sqlite:///{path}", "-qq")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        f"error: '{path}' is not a threadloom store: it holds other tables (`users`) and none of threadloom's; "
        "it is left as it is: give threadloom a database of its own\n"
    )
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]  # no -wal, no -shm


def test_a_key_made_with_threadloom_keys_create_is_enough_to_start(store_url: str, tmp_path: Path) -> None:
    async def make_store() -> None:  # `keys create` adds a key to a store; `serve` or `worker` makes one
        await (await open_store(store_url)).aclose()

    asyncio.run(make_store())
    made = subprocess.run(
        [sys.executable, "-m", "threadloom.cli", "keys", "create", "ops", "--scopes", "read", "--store", store_url],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
    )
    assert made.returncode == 0, made.stderr
    server = Server(store_url, tmp_path / "serve.log", env={"THREADLOOM_API_KEYS": ""}).wait_ready()
    try:
        assert server.stop() == 0, server.output()
    finally:
        server.kill()
    assert made.stdout.strip() not in server.output()


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        refused = _serve("--store", f"sqlite:///{tmp_path}/t.db", "--port", str(port))
    assert refused.returncode == 1 and refused.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert len(refused.stderr.splitlines()) == 1


def test_a_config_file_is_checked_and_names_what_is_wrong_never_a_secret(tmp_path: Path) -> None:
    config = tmp_path / "threadloom.toml"
    config.write_text(f'colour = "blue"\n[[webhooks]]\nurl = "ftp://example.com/hook"\nsecret = "{WEBHOOK_SECRET}"\n')
    refused = _serve("--store", f"sqlite:///{tmp_path}/t.db", "--config", str(config))
    assert refused.returncode == 2, refused.stderr
    [line] = refused.stderr.splitlines()
    assert line.startswith(f"error: {config}: ") and "colour" in line and "webhooks.0.url" in line
    assert WEBHOOK_SECRET not in line

    # ./threadloom.toml is read without --config; a secret that is not `whsec_` and base64 is named, not shown.
    config.write_text('[[webhooks]]\nurl = "http://127.0.0.1:9/hook"\nsecret = "whsec_not base64!"\n')
    refused = _serve("--store", f"sqlite:///{tmp_path}/t.db", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == "error: webhooks[0]: a webhook secret is `whsec_` followed by base64\n"

    refused = _serve("--store", f"sqlite:///{tmp_path}/t.db", "--webhook", "http://127.0.0.1:9/hook")
    assert refused.returncode == 2 and "--webhook needs THREADLOOM_WEBHOOK_SECRET" in refused.stderr


def _unread(sock: socket.socket) -> int | None:
    """Bytes this client sent that the server's process has not read yet (Linux: /proc/net/tcp), None if unknown."""
    client = sock.getsockname()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == client:  # the server's end: its remote port is ours
            return int(fields[4].split(":")[1], 16)
    return None


def _half_sent_launch(url: str) -> tuple[socket.socket, bytes]:
    """A launch whose headers and half its body are sent and read by the server; the rest is returned, to send."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"agent": "deploy_bot", "event": {"type": "slack_message", "data": {"text": "late"}}}).encode()
    head = (
        f"POST /v1/threads HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(head + body[:10])
    wait_for(lambda: _unread(sock) == 0, "the server to read the request's start")
    return sock, body[10:]


def test_sigterm_lets_a_request_in_flight_and_a_run_in_its_tool_finish_then_exits_0(
    store_url: str, tmp_path: Path
) -> None:
    thread = _waiting(store_url, approve=True)
    gate, effects = tmp_path / "gate", tmp_path / "effects"
    env = {"THREADLOOM_TEST_GATE": str(gate), "THREADLOOM_EFFECTS_FILE": str(effects)}
    server = Server(store_url, tmp_path / "serve.log", env=env).wait_ready()
    try:
        wait_for(Path(f"{gate}.running").exists, "the worker in the server to run the deploy")
        sock, rest = _half_sent_launch(server.url)
        server.process.send_signal(signal.SIGTERM)
        wait_for(lambda: "Waiting for connections to close" in server.logs.read_text(), "the server to drain")
        sock.sendall(rest)  # the request in flight when SIGTERM came is answered
        with sock, sock.makefile("rb") as answer:
            assert answer.readline().startswith(b"HTTP/1.1 201 ")
        wait_for(lambda: "to finish their current step" in server.logs.read_text(), "the worker to stop claiming")
        gate.touch()  # the tool, which was running when SIGTERM came, now finishes
        assert server.wait() == 0, server.output()
    finally:
        server.kill()
    assert [t.data for t in _launched_late(store_url)] == [{"text": "late"}]
    assert [effect.label for effect in read(effects)] == ["deploy:v1.2.3@production"]
    stopped = _get(store_url, thread.id)
    assert stopped.events[-1].type == "tool_response" and stopped.status == "ready"  # ended after that step

    # Started again on the same store, the server's worker carries the thread on; the deploy is not repeated.
    server = Server(store_url, tmp_path / "again.log", env=env).wait_ready()
    try:
        wait_for(lambda: _get(store_url, thread.id).status == "done", "the thread to finish")
        assert server.stop() == 0, server.output()
    finally:
        server.kill()
    assert len(read(effects)) == 1


def test_no_secret_reaches_the_output(store_url: str, tmp_path: Path) -> None:
    config = tmp_path / "threadloom.toml"
    config.write_text(
        f'[[webhooks]]\nurl = "http://127.0.0.1:9/hook"\nsecret = "{WEBHOOK_SECRET}"\n'
        f'[[hooks]]\nname = "ci"\nagent = "deploy_bot"\nsecret = "{HOOK_SECRET}"\n'
        '[[hooks]]\nname = "cd"\nagent = "deploy_bot"\nsecret_env = "CD_HOOK_SECRET"\n'
    )
    env = {"THREADLOOM_WEBHOOK_SECRET": WEBHOOK_SECRET, "CD_HOOK_SECRET": HOOK_ENV_SECRET}
    thread = _waiting(store_url)
    server = Server(
        store_url, tmp_path / "serve.log", "-vv", "--config", str(config), "--webhook", "http://127.0.0.1:9/x", env=env
    ).wait_ready()
    try:
        link = answer_url(server.url, SECRET, thread, timedelta(days=7))
        assert link is not None
        for key in (ADMIN, READER, WRITER, "tlk_wrong_secret"):
            httpx.get(f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        httpx.get(link, timeout=30)
        httpx.post(link, data={"decision": "approve"}, timeout=30)
        assert server.stop() == 0
    finally:
        server.kill()
    output = server.output()
    assert "GET /openapi.json" in output and "/v1/answers/***" in output  # the request lines are there
    token = link.rsplit("/", 1)[1]
    for secret in (ADMIN, READER, WRITER, SECRET.decode(), WEBHOOK_SECRET, HOOK_SECRET, HOOK_ENV_SECRET, token):
        assert secret not in output


def test_the_config_file_in_docs_api_md_is_one_the_server_takes(tmp_path: Path) -> None:
    [example] = re.findall(r"```toml\n(.*?)```", (TESTS.parent / "docs" / "api.md").read_text(), re.DOTALL)
    (tmp_path / "threadloom.toml").write_text(example)
    settings = read_settings(tmp_path / "threadloom.toml")
    assert [hook.url for hook in settings.webhooks] == ["https://hooks.example.com/threadloom"]
    assert [(hook.name, hook.agent, hook.event_type) for hook in settings.hooks] == [
        ("github", "deploy_bot", "github_push")
    ]


def test_no_worker_serves_the_api_beside_a_worker_process(store_url: str, tmp_path: Path) -> None:
    effects = tmp_path / "effects"
    env = {"THREADLOOM_EFFECTS_FILE": str(effects)}
    server = Server(store_url, tmp_path / "serve.log", "--no-worker", env=env).wait_ready()
    worker: subprocess.Popen[str] | None = None
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
    try:
        assert "no worker" in server.banner[0]
        event = {"type": "slack_message", "data": {"text": "deploy to production"}}
        thread_id = client.post("/v1/threads", json={"agent": "deploy_bot", "event": event}).json()["thread_id"]
        command = [sys.executable, "-m", "threadloom.cli", "worker", "--store", store_url]
        worker = subprocess.Popen(
            [*command, "--agents", "serve_agents:deploy_bot", "--poll-seconds", "0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **ENV, **env},
        )
        wait_started(worker, "worker on")

        def status() -> str:
            return client.get(f"/v1/threads/{thread_id}").json()["status"]

        wait_for(lambda: status() == "waiting_approval", "the worker process to run the thread")
        call_id = client.get(f"/v1/threads/{thread_id}").json()["pending"]["id"]
        assert client.post(f"/v1/threads/{thread_id}/approvals/{call_id}", json={"decision": "approve"}).is_success
        wait_for(lambda: status() == "done", "the worker process to run the deploy")
        [effect] = read(effects)
        assert effect.pid == worker.pid  # the worker ran it, not the server
        assert server.stop() == 0, server.output()
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
        assert worker.returncode == 0
    finally:
        client.close()
        server.kill()
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.communicate()


async def test_connections_to_the_listening_socket_send_without_waiting_for_acks() -> None:
    # Nagle's algorithm off on every accepted connection: a response written in two parts would
    # otherwise wait for the client's delayed ACK (40 ms a request on a kept-alive connection).
    nodelay: list[int] = []
    seen = asyncio.Event()

    def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        del reader
        nodelay.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        seen.set()
        writer.close()

    server = await asyncio.start_server(accepted, sock=listen("127.0.0.1", 0))
    async with server:
        _, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        await seen.wait()
        writer.close()
    assert nodelay == [1]
