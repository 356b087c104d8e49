"""`/healthz` and `/metrics`: the store's health and totals, read from the store at each request."""

from __future__ import annotations

from urllib.parse import unquote

import httpx
import psycopg
from bots import asker, deploy_bot, launch, wait_for
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from serving import KEYS, READER, SECRET, Serve, serving

from threadloom import Runtime
from threadloom.server import KeyRing, ServerConfig, create_app, parse_keys


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_healthz_needs_no_key_and_says_the_store_answers(serve: Serve) -> None:
    with serve() as client:
        answer = httpx.get(f"{client.base_url}/healthz")
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_metrics_count_threads_steps_tokens_errors_and_how_long_people_took(serve: Serve) -> None:
    with serve([deploy_bot(), asker()]) as client:
        assert httpx.get(f"{client.base_url}/metrics").status_code == 401
        thread = wait_for(client, launch(client), "waiting_approval")
        client.post(
            f"/v1/threads/{thread['thread_id']}/approvals/{thread['pending']['id']}", json={"decision": "approve"}
        )
        wait_for(client, thread["thread_id"], "done")
        wait_for(client, launch(client, "asker"), "waiting_human")
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {READER}"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
        found = samples(answer.text)
        threads = {labels[0][1]: value for (name, labels), value in found.items() if name == "threadloom_threads"}
        assert threads == {"ready": 0, "waiting_approval": 0, "waiting_human": 1, "sleeping": 0, "done": 1, "failed": 0}
        assert found[("threadloom_model_steps_total", (("model", "scripted"),))] == 3  # deploy, done, the question
        assert ("threadloom_model_tokens_total", (("kind", "input"), ("model", "scripted"))) in found
        assert found[("threadloom_tool_errors_total", ())] == 0
        assert found[("threadloom_human_wait_seconds_count", ())] == 1
        assert found[("threadloom_human_wait_seconds_sum", ())] > 0


def test_a_store_that_cannot_be_reached_is_a_503(postgres_url: str) -> None:
    schema = unquote(postgres_url).rsplit("search_path=", 1)[1]
    base = postgres_url.split("?")[0]
    config = ServerConfig(runtime=Runtime(store=postgres_url), keys=KeyRing(parse_keys(KEYS)), secret=SECRET)
    with serving(create_app(config)) as url:
        with psycopg.connect(base, autocommit=True) as conn:  # the database loses the store's tables
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        try:
            for answer in (httpx.get(f"{url}/healthz"), httpx.get(f"{url}/metrics", headers={"X-API-Key": READER})):
                assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
                assert answer.json()["error"]["code"] == "store_unavailable"
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
