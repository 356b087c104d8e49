"""schemathesis against the served /openapi.json of a real uvicorn: no 5xx, every answer as the document says.

Two runs over one server on SQLite: every operation on its own (valid and invalid requests), then
stateful scenarios that follow the document's links (a launch's `thread_id` into reading, sending,
forking, cancelling; a read thread's `pending.id` into deciding and answering). The stream is left
out: a thread that waits keeps it open by design (tests/server/test_stream.py covers it).
"""

# schemathesis's checks and cases are generic over types it leaves unknown to pyright; the test
# handles them as they come (its own names are typed).
# pyright: reportUnknownVariableType=false, reportUnknownMemberType=false, reportUnknownArgumentType=false
# pyright: reportUnknownParameterType=false, reportMissingTypeArgument=false

from __future__ import annotations

import json
import time
import uuid
import zlib
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from bots import asker, deploy_bot
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from serving import ADMIN, KEYS, SECRET, serving

from threadloom import Runtime
from threadloom.server import KeyRing, ServerConfig, create_app, parse_keys

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
AUTH = {"Authorization": f"Bearer {ADMIN}"}
# Invalid requests must be refused: 413 (a body over the limit, refused unread) is a refusal too.
REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
CONFIG = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}})
AGENTS = ("deploy_bot", "asker")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    """The served document of a server with the deploy bot, an asker and a worker, on a fresh SQLite file."""
    path = Path(tmp_path_factory.mktemp("schema")) / "threads.db"
    runtime = Runtime(store=f"sqlite:///{path}", agents=[deploy_bot(), asker()])
    config = ServerConfig(runtime=runtime, keys=KeyRing(parse_keys(KEYS)), secret=SECRET, max_body_bytes=20_000)
    with serving(create_app(config)) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=CONFIG)
        yield schema.exclude(operation_id="stream_thread")


def negative(case: Case, location: ParameterLocation) -> bool:
    """Whether the case made this part of the request invalid on purpose."""
    component = case.meta.components.get(location) if case.meta is not None else None
    return component is not None and component.mode.is_negative


def served(case: Case) -> None:
    """Make a launch's answer depend on the case alone, so that a scenario replays the same way.

    Three in four valid launch bodies name an agent the server runs (so that their links lead
    somewhere), with a fresh thread id if they pick one; no launch keeps an `Idempotency-Key` an
    earlier case may have used (a repeat would answer 409 or 200 where its first run answered 201).
    An invalid body stays as it was made.
    """
    if case.operation.label != "POST /v1/threads":
        return
    headers: dict[str, Any] = dict(case.headers or {})
    cast(Any, case).headers = {k: v for k, v in headers.items() if k.lower() != "idempotency-key"}
    if isinstance(case.body, dict) and not negative(case, ParameterLocation.BODY):
        body = cast(dict[str, Any], case.body)
        choice = zlib.crc32(json.dumps(body, sort_keys=True, default=repr).encode())
        if choice % 4:
            body["agent"] = AGENTS[choice % 2]
        if "thread_id" in body:
            body["thread_id"] = f"th_{uuid.uuid4().hex}"


def checks(case: Case) -> list[Any]:
    """The checks for a case: "invalid data is refused" only where the request went out as generated.

    The test sends its own valid key, and drops a launch's `Idempotency-Key`: a case whose headers
    were the invalid part reaches the server valid, so a 2xx for it is no wrongful acceptance.
    """
    if negative(case, ParameterLocation.HEADER):
        return [check for check in CHECKS if check is not negative_data_rejection]
    return CHECKS


calls: list[str] = []


def settle(url: str) -> None:
    """Wait until the worker has taken every step it can: then what a thread shows (its pending id,
    which the links pass on) depends on the requests alone, so a scenario replays the same way."""
    deadline = time.monotonic() + 30
    ready = f"{url.rstrip('/')}/v1/threads"
    while httpx.get(ready, params={"status": "ready", "limit": 1}, headers=AUTH).json()["threads"]:
        assert time.monotonic() < deadline, "the worker did not settle"
        time.sleep(0.01)


def call(case: Case) -> None:
    """Send the case with an admin key, then check the answer against the document."""
    served(case)
    calls.append(case.operation.label)
    response = case.call(headers=AUTH, timeout=60)
    case.validate_response(response, checks=checks(case), headers=AUTH)


@contextmanager
def noted(case: Case, failures: list[str]) -> Generator[None]:
    """Note a failing check or settle of a case, which a flaky replay would otherwise hide."""
    try:
        yield
    except Exception as exc:
        failures.append(f"{case.as_curl_command(headers={})}\n  {type(exc).__name__}: {str(exc)[:1500]}")
        raise


def test_every_operation_answers_as_documented(api: schemathesis.BaseSchema) -> None:
    before = len(calls)
    for result in api.get_all_operations():
        operation = cast(Any, result).ok()  # an operation the document cannot describe fails the test here
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @hypothesis.settings(
            max_examples=50,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(strategy)
        def answers(case: Case) -> None:
            call(case)

        answers()
    assert len(calls) - before >= 600  # with the scenarios' 400 and more: over 1,000 requests in all


def test_linked_scenarios_answer_as_documented(api: schemathesis.BaseSchema) -> None:
    base = api.as_state_machine()
    before = len(calls)

    class Scenarios(base):
        def before_call(self, case: Case) -> None:
            served(case)
            calls.append(case.operation.label)

        def after_call(self, response: Any, case: Case) -> None:
            with noted(case, failures):
                super().after_call(response, case)
                settle(api.get_base_url())

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"headers": AUTH, "timeout": 60}

        def validate_response(
            self, response: Any, case: Case, additional_checks: list[Any] | None = None, **kwargs: Any
        ) -> None:
            with noted(case, failures):
                case.validate_response(response, checks=checks(case), headers=AUTH)

    failures: list[str] = []
    try:
        Scenarios.run(
            settings=hypothesis.settings(
                max_examples=60,
                stateful_step_count=8,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            )
        )
    except hypothesis.errors.Flaky as exc:
        # The replay of a failing scenario drew other data (the server's state moved on), and
        # hypothesis reports only that: say what failed first.
        raise AssertionError("the scenarios failed, then replayed otherwise:\n" + "\n".join(failures)) from exc
    assert len(calls) - before >= 400
    linked = set(calls[before:])
    assert {"GET /v1/threads/{thread_id}", "POST /v1/threads/{thread_id}/events"} <= linked
