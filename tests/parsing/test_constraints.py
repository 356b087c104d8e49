import pytest
from pydantic import JsonValue

from threadloom.parsing._constraints import asserts_hold


@pytest.mark.parametrize(
    ("constraint", "value", "holds"),
    [
        ("@assert(nonnegative, {{this >= 0}})", 3, True),
        ("@assert(nonnegative, {{this >= 0}})", -1, False),
        ("@assert(nonempty, {{this|length > 0}})", "", False),
        ("@assert(short, {{this|length < 2}})", [1, 2], False),
        ("@@assert(hi, {{ this.foo > 0 }})", {"foo": 1}, True),
        ("@@assert(hi, {{ this.foo > 0 }})", {"foo": -1}, False),
        ('@assert(two, {{ this == \\"TWO\\" }})', "THREE", False),
        ("@assert(never, {{ false }})", 1, False),
        ("@check(reported_only, {{ false }})", 1, True),  # checks report, they do not reject
        ("@assert(unknown, {{ this|regex_match('x') }})", "y", True),  # outside the subset: not judged
        ("@@assert(missing, {{ this.bar > 0 }})", {"foo": 1}, True),
    ],
)
def test_asserts(constraint: str, value: JsonValue, holds: bool) -> None:
    assert asserts_hold(value, {"x-baml-constraints": [constraint]}) is holds


def test_no_constraints_hold() -> None:
    assert asserts_hold(1, {"type": "integer"})
