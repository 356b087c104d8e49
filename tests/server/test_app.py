from serving import KEYS, SECRET, Serve

from threadloom import Runtime
from threadloom.server import KeyRing, ServerConfig, create_app, parse_keys


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
