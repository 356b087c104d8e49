"""The pytest plugin (entry point `pytest11`): fixtures for agent tests, loaded once threadloom is installed.

- `scripted_model(outputs, name=...)`: a `ScriptedModel`;
- `memory_store`: a fresh `MemoryStore`;
- `runtime(*agents)`: a `Runtime` on `memory_store`;
- `cassette(model=None, name=None)`: a `Cassette` in `cassettes/` beside the test file, one file per
  test (and per `name`), saved when the test passes. `--cassette-mode` (or `THREADLOOM_CASSETTES`)
  sets the mode: `auto` (replay when the file exists, else record), `replay`, `record`, `update`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from threadloom import Agent, Runtime
    from threadloom.models import Model, ScriptedModel, ScriptedOutput
    from threadloom.models.cassette import Cassette
    from threadloom.store import MemoryStore

__all__ = ["cassette", "memory_store", "pytest_addoption", "runtime", "scripted_model"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--cassette-mode`: how every `cassette` fixture treats its file."""
    parser.addoption(
        "--cassette-mode",
        default=None,
        choices=("auto", "replay", "record", "update"),
        help="threadloom cassettes: auto (replay if the file exists), replay, record, or update what changed",
    )


@pytest.fixture
def scripted_model() -> Callable[..., ScriptedModel]:
    """Makes a `ScriptedModel`: `scripted_model(['{"intent": ...}'], name="scripted")`."""
    from threadloom.models import ScriptedModel

    def make(outputs: Iterable[ScriptedOutput], *, name: str = "scripted") -> ScriptedModel:
        return ScriptedModel(outputs, name=name)

    return make


@pytest.fixture
def memory_store() -> MemoryStore:
    """A fresh in-memory thread store."""
    from threadloom.store import MemoryStore

    return MemoryStore()


@pytest.fixture
def runtime(memory_store: MemoryStore) -> Callable[..., Runtime]:
    """Makes a `Runtime` on `memory_store` for the agents given: `runtime(agent)`."""
    from threadloom import Runtime

    def make(*agents: Agent) -> Runtime:
        return Runtime(store=memory_store, agents=agents)

    return make


@pytest.fixture
def cassette(request: pytest.FixtureRequest) -> Iterator[Callable[..., Cassette]]:
    """Makes a `Cassette` for this test: `cassette(model)` records or replays `cassettes/MODULE/TEST.yaml`."""
    from threadloom.models.cassette import Cassette

    made: list[Cassette] = []
    mode: Any = request.config.getoption("--cassette-mode") or "auto"
    folder = Path(request.path).parent / "cassettes" / Path(request.path).stem
    test = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")

    def make(model: Model | None = None, *, name: str | None = None) -> Cassette:
        path = folder / f"{test}{'.' + name if name else ''}.yaml"
        opened = Cassette(path, model, mode=mode)
        made.append(opened)
        return opened

    yield make
    report: Any = getattr(request.node, "rep_call", None)
    if report is None or report.passed:
        for item in made:
            item.save()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so the `cassette` fixture saves only after a pass."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
