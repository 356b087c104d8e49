"""The pytest plugin: its fixtures in a test suite of a user's own (pytester), cassettes saved only after a pass."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
from threadloom import Agent, Thread
from threadloom.evals import OneOf, assert_next_intent_sync

DONE = '{"intent": "done_for_now", "message": "hi"}'


def start():
    return Thread.start("user_input", {"text": "hello"})


def test_scripted(scripted_model):
    agent = Agent(name="a", model=scripted_model([DONE]))
    assert_next_intent_sync(agent, start(), "done_for_now", message="hi")


def test_wrong_intent(scripted_model):
    agent = Agent(name="a", model=scripted_model([DONE]))
    assert_next_intent_sync(agent, start(), OneOf("request_more_information"))


async def test_runtime(runtime, memory_store, scripted_model):
    rt = runtime(Agent(name="a", model=scripted_model([DONE])))
    from threadloom import Event

    thread_id = await rt.launch("a", Event("user_input", {"text": "hi"}))
    await rt.run_until_idle()
    assert (await memory_store.load(thread_id)).status == "done"


def test_cassette(cassette, scripted_model):
    model = cassette(scripted_model([DONE]))
    Agent(name="a", model=model).run_sync(start())


def test_cassette_failing(cassette, scripted_model):
    model = cassette(scripted_model([DONE]), name="second")
    Agent(name="a", model=model).run_sync(start())
    raise AssertionError("this test fails, so its cassette is not written")
"""


def plugin_args(request: pytest.FixtureRequest) -> list[str]:
    # Installed, the `pytest11` entry point loads the plugin already; from a bare checkout, name it.
    loaded = request.config.pluginmanager.has_plugin("threadloom")
    return [] if loaded else ["-p", "threadloom.evals.pytest_plugin"]


def test_the_fixtures_and_assert_next_intent_in_a_users_suite(
    pytester: pytest.Pytester, request: pytest.FixtureRequest
) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest(*plugin_args(request))
    result.assert_outcomes(passed=3, failed=2)
    # fnmatch: `?` stands for the brackets, which it would read as a character class.
    result.stdout.fnmatch_lines(['*expected one of ?\'request_more_information\'?(), got {"intent": "done_for_now"*'])
    folder = pytester.path / "cassettes" / "test_user"
    assert sorted(p.name for p in folder.iterdir()) == ["test_cassette.yaml"]
    # The second run replays the first's cassette: the scripted model is not asked.
    pytester.makepyfile(
        test_user=USER_TESTS.replace("cassette(scripted_model([DONE]))", "cassette(scripted_model([]))")
    )
    replayed = pytester.runpytest(*plugin_args(request), "-k", "test_cassette and not failing")
    replayed.assert_outcomes(passed=1, deselected=4)
    changed = USER_TESTS.replace('"hello"', '"hello there"')
    pytester.makepyfile(test_user=changed)
    mismatch = pytester.runpytest(*plugin_args(request), "-k", "test_cassette and not failing")
    mismatch.assert_outcomes(failed=1, deselected=4)
    mismatch.stdout.fnmatch_lines(["*CassetteMismatch*", "*hello there*"])
