import logging

import httpx
import pytest
from fastapi import FastAPI
from serving import KEYS, SECRET, Serve, serving

from threadloom import Runtime
from threadloom.server import KeyRing, ServerConfig, create_app, parse_keys
from threadloom.server._errors import install_error_handlers


def test_the_openapi_document_is_served_and_names_the_api(serve: Serve) -> None:
    with serve() as client:
        document = client.get("/openapi.json").json()
        assert document["info"]["title"] == "threadloom"
        assert client.get("/docs").status_code == 200


def test_an_unknown_path_is_a_json_error(serve: Serve) -> None:
    with serve() as client:
        answer = client.get("/v1/nowhere")
        assert answer.status_code == 404
        assert answer.json() == {"error": {"code": "not_found", "message": "Not Found"}}


def test_a_body_over_the_limit_is_refused_before_it_is_read(serve: Serve) -> None:
    with serve(max_body_bytes=100) as client:
        answer = client.post("/v1/threads", content=b"x" * 101, headers={"Content-Type": "application/json"})
        assert answer.status_code == 413 and answer.json()["error"]["code"] == "body_too_large"


def test_create_app_builds_without_serving() -> None:
    config = ServerConfig(runtime=Runtime(store="memory://"), keys=KeyRing(parse_keys(KEYS)), secret=SECRET)
    assert create_app(config).title == "threadloom"


def test_a_request_that_fails_is_logged_without_its_answer_link_token(caplog: pytest.LogCaptureFixture) -> None:
    # The token is a capability (whoever has it may answer), so it must not reach a log either.
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/v1/answers/{token}")
    async def fail(token: str) -> None:
        raise RuntimeError("a bug")

    with serving(app) as url, caplog.at_level(logging.ERROR, logger="threadloom.server"):
        answer = httpx.post(f"{url}/v1/answers/a1.secret-token.sig")
        assert answer.status_code == 500 and answer.json()["error"]["code"] == "internal"
    assert "POST /v1/answers/*** failed" in caplog.messages and "secret-token" not in caplog.text
