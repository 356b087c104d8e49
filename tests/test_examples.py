"""Every Python example in the README, docs/ and docstrings runs (factor 2: docs are code too)."""

from pathlib import Path

import pytest
from pytest_examples import CodeExample, EvalExample, find_examples

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("example", list(find_examples(ROOT / "README.md", ROOT / "docs", ROOT / "src")), ids=str)
def test_example_runs(example: CodeExample, eval_example: EvalExample) -> None:
    eval_example.run(example)
