"""The small YAML emitter: plain when unambiguous, JSON-quoted otherwise, `|` blocks for text."""

import json
import math
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom._yaml import dump_yaml
from yaml_reader import C_PRINTABLE as _C_PRINTABLE
from yaml_reader import load as _load
from yaml_reader import plain as _plain
from yaml_reader import quoted as _quoted
from yaml_reader import read as _read

# -- quoting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # numbers of every shape
        "1",
        "0",
        "-1",
        "+1",
        "1.0",
        "1.",
        ".5",
        "1e5",
        "1E-5",
        "1_000",
        "0o17",
        "0b101",
        "0x10",
        "017",
        "12:30",
        "190:20:30",
        ".inf",
        "-.inf",
        "+.INF",
        ".nan",
        ".NaN",
        # booleans and nulls, YAML 1.1 and 1.2
        "yes",
        "Yes",
        "YES",
        "no",
        "No",
        "on",
        "ON",
        "off",
        "Off",
        "true",
        "True",
        "false",
        "FALSE",
        "y",
        "n",
        "N",
        "null",
        "Null",
        "NULL",
        "~",
        # dates and timestamps
        "2024-01-05",
        "2024-1-5",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "2001-12-14T21:59:43Z",
        # special first characters
        "@alex",
        "-x",
        "- item",
        "-",
        "*ref",
        "&anchor",
        "!tag",
        "%TAG",
        "`cmd`",
        "#channel",
        "'single'",
        '"double"',
        "?q",
        ":x",
        ",x",
        "[x]",
        "{x}",
        "|x",
        ">x",
        "=",
        # inside and around
        "a: b",
        "a #b",
        "done:",
        "a\tb",
        " a",
        "a ",
        " ",
        "",
        "line\r",
        "bell\x07",
        "nul\x00",
        "escape\x1b[0m",
        "nbsp\xa0here",
        "bom\ufeff",
        "...",
        "... and more",
        "---x",
        "0xff",
        "0x1F",
        "+.5",
        "<<",
    ],
)
def test_strings_that_would_not_read_back_are_json_quoted(text: str) -> None:
    out = dump_yaml(text)
    assert out == json.dumps(text, ensure_ascii=False)
    assert json.loads(out) == text
    assert dump_yaml({"k": text}) == "k: " + out
    assert dump_yaml([text]) == "- " + out


def test_line_separators_are_escaped_since_yaml_1_1_breaks_lines_there() -> None:
    assert dump_yaml("ls\u2028ps\u2029") == '"ls\\u2028ps\\u2029"'


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "deploy the backend to production",
        "v1.2.3",
        "a:b",
        "https://example.com/a?b=c#d",
        "a#b",
        "C#",
        "yesterday",
        "nobody",
        "onto",
        "true story",
        "null pointer",
        "12 monkeys",
        "x-1",
        "a - b",
        "it's",
        'say "hi"',
        "100%",
        "a,b",
        "déjà vu",
        "日本語",
        "emoji 🚀",
        "Ünïcödé",
        ".hidden",
        "..x",
    ],
)
def test_unambiguous_strings_are_written_plain(text: str) -> None:
    assert dump_yaml(text) == text
    assert dump_yaml({"k": text}) == f"k: {text}"


def test_the_example_from_the_docstring() -> None:
    assert dump_yaml({"from": "@alex", "tags": ["v1.2.3", "1.0"], "ok": True}) == (
        'from: "@alex"\ntags:\n  - v1.2.3\n  - "1.0"\nok: true'
    )


@pytest.mark.parametrize(
    ("value", "out"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-12, "-12"),
        (10**30, "1000000000000000000000000000000"),
        (1.5, "1.5"),
        (-0.25, "-0.25"),
        (1.0, "1.0"),
    ],
)
def test_scalars(value: JsonValue, out: str) -> None:
    assert dump_yaml(value) == out


def test_non_finite_floats_are_quoted_strings() -> None:
    assert dump_yaml(math.inf) == '"inf"'
    assert dump_yaml(-math.inf) == '"-inf"'
    assert dump_yaml(math.nan) == '"nan"'


def test_nested_dicts_and_lists() -> None:
    value: JsonValue = {
        "service": "backend",
        "replicas": 3,
        "env": {"region": "eu-west-1", "debug": False, "limits": {"cpu": "500m", "memory": None}},
        "tags": ["v1.2.3", "latest", 7],
        "matrix": [[1, 2], [], [{"a": 1}]],
    }
    assert dump_yaml(value).splitlines() == [
        "service: backend",
        "replicas: 3",
        "env:",
        "  region: eu-west-1",
        "  debug: false",
        "  limits:",
        "    cpu: 500m",
        "    memory: null",
        "tags:",
        "  - v1.2.3",
        "  - latest",
        "  - 7",
        "matrix:",
        "  -",
        "    - 1",
        "    - 2",
        "  - []",
        "  -",
        "    - a: 1",
    ]


def test_empty_containers() -> None:
    assert dump_yaml({}) == "{}"
    assert dump_yaml([]) == "[]"
    assert dump_yaml({"a": {}, "b": [], "c": [{}, []]}) == "a: {}\nb: []\nc:\n  - {}\n  - []"


def test_lists_of_dicts() -> None:
    value: JsonValue = [
        {"name": "api", "port": 8080, "hosts": ["a", "b"]},
        {"name": "db", "config": {"user": "ro"}},
    ]
    assert dump_yaml(value).splitlines() == [
        "- name: api",
        "  port: 8080",
        "  hosts:",
        "    - a",
        "    - b",
        "- name: db",
        "  config:",
        "    user: ro",
    ]


def test_indent_prefixes_every_line() -> None:
    assert dump_yaml({"a": [1, {"b": "x\ny"}]}, indent=2).splitlines() == [
        "  a:",
        "    - 1",
        "    - b: |-",
        "        x",
        "        y",
    ]
    assert dump_yaml("plain", indent=4) == "    plain"
    assert dump_yaml({}, indent=2) == "  {}"


def test_multi_line_strings_are_literal_blocks() -> None:
    assert dump_yaml({"log": "line one\nline two"}) == "log: |-\n  line one\n  line two"
    # a final line break would need one after the block too, which a bare dump does not end with
    assert dump_yaml({"log": "line one\nline two\n"}) == 'log: "line one\\nline two\\n"'
    assert dump_yaml("a\nb") == "|-\n  a\n  b"
    assert dump_yaml(["a\nb", "c"]) == "- |-\n  a\n  b\n- c"
    assert dump_yaml([{"k": "a\nb"}]) == "- k: |-\n    a\n    b"
    # blank lines inside a block are written empty, more-indented lines keep their spaces
    assert dump_yaml({"k": "a\n\n  b\n#c: d"}) == "k: |-\n  a\n\n    b\n  #c: d"


@pytest.mark.parametrize(
    "text",
    [
        "one line\n",  # a single line with a newline: no second line to make a block worth it
        "\nstarts with a newline",
        " leading space\nsecond",
        "trailing space \nsecond",
        "two trailing\nnewlines\n\n",
        "tab\tinside\nsecond",
        "carriage\r\nreturn",
    ],
)
def test_multi_line_strings_that_a_block_cannot_hold_are_quoted(text: str) -> None:
    assert dump_yaml({"k": text}) == "k: " + json.dumps(text, ensure_ascii=False)


def test_keys_are_quoted_when_not_plain_safe() -> None:
    value: JsonValue = {
        "plain": 1,
        "yes": 2,
        "null": 3,
        "1": 4,
        "": 5,
        "a: b": 6,
        "#x": 7,
        "- d": 8,
        "@u": 9,
        " s": 10,
        "k:": 11,
        "multi\nline": 12,
        "ünï": 13,
        "x-y": 14,
    }
    assert dump_yaml(value).splitlines() == [
        "plain: 1",
        '"yes": 2',
        '"null": 3',
        '"1": 4',
        '"": 5',
        '"a: b": 6',
        '"#x": 7',
        '"- d": 8',
        '"@u": 9',
        '" s": 10',
        '"k:": 11',
        '"multi\\nline": 12',
        "ünï: 13",
        "x-y: 14",
    ]


# -- once-reported bugs, now fixed ----------------------------------------------------------


@pytest.mark.parametrize("text", ["0xff", "0x1F", "0xCAFE", "+0xa", "0x_1f"])
def test_hex_looking_strings_are_quoted(text: str) -> None:
    # YAML 1.1 and 1.2 both read `0xff` as the integer 255
    assert dump_yaml(text) == json.dumps(text)


def test_signed_leading_dot_float_is_quoted() -> None:
    # YAML 1.2 core reads `+.5` as a float
    assert dump_yaml("+.5") == '"+.5"'
    assert dump_yaml("-.5e3") == '"-.5e3"'


def test_merge_key_is_quoted() -> None:
    # YAML 1.1 reads `<<` as the merge key
    assert dump_yaml({"<<": "<<"}) == '"<<": "<<"'


def test_document_markers_are_quoted() -> None:
    assert dump_yaml("...") == '"..."'
    assert dump_yaml("... more") == '"... more"'
    assert dump_yaml(["...", "---"]) == '- "..."\n- "---"'


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("a\x7fb", '"a\\u007fb"'),
        ("x\x9fy", '"x\\u009fy"'),
        ("next\x85line", '"next\\u0085line"'),
        ("\ufffe", '"\\ufffe"'),
        ("\uffff", '"\\uffff"'),
    ],
)
def test_quoted_scalars_escape_characters_yaml_forbids(text: str, out: str) -> None:
    assert dump_yaml(text) == out
    assert json.loads(out) == text
    assert dump_yaml({text: 1}) == out + ": 1"
    dumped = dump_yaml({"k": text})
    assert _C_PRINTABLE.fullmatch(dumped) is not None
    assert "\x85" not in dumped  # NEL is a line break in YAML 1.1: it would fold to a space


def test_long_keys_are_explicit_keys() -> None:
    # YAML implicit keys are limited to 1024 characters
    long = "k" * 1100
    assert dump_yaml({long: 1, "short": 2}) == f"? {long}\n: 1\nshort: 2"
    assert dump_yaml({long: {"a": 1}}) == f"? {long}\n:\n  a: 1"
    assert dump_yaml({"k" * 1000: 1}) == "k" * 1000 + ": 1"
    assert _load(dump_yaml({long: [1, "x\ny"]})) == {long: [1, "x\ny"]}


def test_trailing_newline_survives_a_bare_dump() -> None:
    assert dump_yaml({"k": "a\nb\n"}) == 'k: "a\\nb\\n"'
    assert _load(dump_yaml({"k": "a\nb\n"})) == {"k": "a\nb\n"}


# -- round trip ------------------------------------------------------------------------------

_texts = st.text(max_size=30)
_tricky = st.sampled_from(
    ["yes", "no", "null", "~", "1.0", "0o7", "2024-01-05", "@a", "- a", "a: b", "a #b", "x:", " ", "", "\t",
     "a\nb", "a\nb\n", "a\n\nb", "0xff", "<<", "...", "+.5", "\x7f", "\x85", "k" * 1030, " a\nb", "a \nb", "é", "v1.2.3", "12:30", ".5", "-.inf", "=", "..x"]
)  # fmt: skip
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: "e" not in repr(f))
    | _texts
    | _tricky
)
_json: st.SearchStrategy[JsonValue] = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_texts | _tricky, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_round_trip(value: JsonValue) -> None:
    assert _load(dump_yaml(value)) == value
    assert _load(dump_yaml(value) + "\n") == value  # as written to a file


@given(_json, st.integers(min_value=0, max_value=6))
def test_indent_only_adds_leading_spaces(value: JsonValue, indent: int) -> None:
    plain = dump_yaml(value).split("\n")
    indented = dump_yaml(value, indent=indent).split("\n")
    assert indented == [" " * indent + line if line else "" for line in plain]


def test_the_checker_catches_what_a_parser_would() -> None:
    with pytest.raises(AssertionError):
        _plain("0xff", True)
    with pytest.raises(AssertionError):
        _plain("yes", False)
    with pytest.raises(AssertionError):
        _plain("a: b", False)
    with pytest.raises(AssertionError):
        _plain("...", True)
    with pytest.raises(AssertionError):
        _quoted('"a\x7fb"')
    assert _plain("...", False) == "..."


# -- tables (tables=True, the context's bodies) ------------------------------------------------


def test_a_list_of_like_objects_is_a_table() -> None:
    value: JsonValue = {
        "carrier": "UPS",
        "events": [
            {"at": "2026-11-10T09:00:00Z", "where": "Reno, NV", "what": "scanned"},
            {"at": "2026-11-11T09:00:00Z", "where": "Salem, OR", "what": None},
        ],
    }
    assert dump_yaml(value, tables=True).splitlines() == [
        "carrier: UPS",
        "events[2]{at,where,what}:",
        '  "2026-11-10T09:00:00Z","Reno, NV",scanned',
        '  "2026-11-11T09:00:00Z","Salem, OR",null',
    ]
    assert _read(dump_yaml(value, tables=True)) == value


def test_cells_are_quoted_as_yaml_values_are_and_also_for_commas() -> None:
    rows: JsonValue = [
        {"s": "plain text", "num": 1, "f": 2.5, "b": True},
        {"s": "a,b", "num": -3, "f": 1e-07, "b": False},
        {"s": "1", "num": 0, "f": 0.0, "b": None},
        {"s": "", "num": 10**20, "f": -1.5, "b": "true"},
        {"s": 'say "hi"', "num": 2, "f": 3.0, "b": "line\nbreak"},
        {"s": "a: b", "num": 2, "f": 3.0, "b": " padded "},
    ]
    assert dump_yaml(rows, tables=True).splitlines() == [
        "[6]{s,num,f,b}:",
        "  plain text,1,2.5,true",
        '  "a,b",-3,1e-07,false',
        '  "1",0,0.0,null',
        '  "",100000000000000000000,-1.5,"true"',
        '  say "hi",2,3.0,"line\\nbreak"',
        '  "a: b",2,3.0," padded "',
    ]
    assert _read(dump_yaml(rows, tables=True)) == rows


def test_what_is_not_a_table_stays_a_yaml_list() -> None:
    assert dump_yaml([{"a": 1}, {"b": 1}], tables=True) == "- a: 1\n- b: 1"  # other keys
    assert dump_yaml([{"a": [1]}, {"a": [2]}], tables=True) == "- a:\n    - 1\n- a:\n    - 2"  # not scalars
    assert dump_yaml([{"a": 1}, 2], tables=True) == "- a: 1\n- 2"
    assert dump_yaml([{}, {}], tables=True) == "- {}\n- {}"
    assert dump_yaml({"k": []}, tables=True) == "k: []"
    # same keys in another order: one table, cells in the header's order
    assert dump_yaml([{"a": 1, "b": 2}, {"b": 3, "a": 4}], tables=True) == "[2]{a,b}:\n  1,2\n  4,3"


def test_tables_nest_under_keys_and_list_items() -> None:
    value: JsonValue = [{"order": 1, "items": [{"sku": "A", "qty": 2}]}, [{"x": 1}]]
    assert dump_yaml(value, tables=True).splitlines() == [
        "- order: 1",
        "  items[1]{sku,qty}:",
        "    A,2",
        "-",
        "  [1]{x}:",
        "    1",
    ]
    assert _read(dump_yaml(value, tables=True)) == value


def test_keys_that_could_read_as_a_header_are_quoted() -> None:
    value: JsonValue = {"a[1]{b}": {"c": 1}, "x,y": [{"p,q": 1, "{r}": 2, "ok": 3}], "[": 1}
    assert dump_yaml(value, tables=True).splitlines() == [
        '"a[1]{b}":',
        "  c: 1",
        'x,y[1]{"p,q","{r}",ok}:',
        "  1,2,3",
        '"[": 1',
    ]
    assert _read(dump_yaml(value, tables=True)) == value


def test_nested_objects_in_rows_are_flattened_into_dotted_columns() -> None:
    issues: JsonValue = [
        {"id": 1, "user": {"login": "ada", "id": 7}, "title": "a, b", "v1.2": True},
        {"id": 2, "title": "c", "user": {"id": 8, "login": "bob"}, "v1.2": False},
    ]
    assert dump_yaml(issues, tables=True).splitlines() == [
        '[2]{id,user.login,user.id,title,"v1.2"}:',  # a key with a dot is quoted: one key, not a path
        '  1,ada,7,"a, b",true',
        "  2,bob,8,c,false",
    ]
    assert _read(dump_yaml(issues, tables=True)) == issues
    # not flattened: an empty object, a list inside, a key that cannot be a path step, other shapes
    not_tables: list[JsonValue] = [
        [{"a": {}}],
        [{"a": {"b": [1]}}],
        [{"a": {"b.c": 1}}],
        [{"a": {"b": 1}}, {"a": {"c": 1}}],
        [{"a": {"b": 1}}, {"a": 1}],
        [{"a,b": {"c": 1}}],
    ]
    for rows in not_tables:
        assert "]{" not in dump_yaml(rows, tables=True).split("\n")[0], rows
        assert _read(dump_yaml(rows, tables=True)) == rows


_cell_texts = st.sampled_from(
    ["a,b", ",", '"', 'a"b', "x: y", "a #b", "- a", "[1]{a}:", "{", "}", "null", "1", "1.5", "", " ", "\n", "a\nb",
     "é, ü", "日本", "v1.2.3", "2026-09-14", "Reno, NV", "@a", "a\tb", "\x85", "k" * 70 + ",", "k" * 70]
)  # fmt: skip
_cells_scalars = _scalars | _cell_texts
_table_keys = _texts | _cell_texts | st.sampled_from(["a[1]{b}", "[", "{x}", "k,"])
_row_shapes: st.SearchStrategy[JsonValue] = st.recursive(
    st.just(cast(JsonValue, None)),  # a leaf: a scalar goes here
    lambda inner: st.dictionaries(
        _table_keys | st.sampled_from(["a", "b", "user", "a.b"]), inner, min_size=1, max_size=3
    ),
    max_leaves=6,
).filter(lambda shape: isinstance(shape, dict))


def _fill(shape: JsonValue, leaves: list[JsonValue]) -> JsonValue:
    """`shape` with each None leaf replaced by the next of `leaves`."""
    if isinstance(shape, dict):
        return {k: _fill(v, leaves) for k, v in shape.items()}
    return leaves.pop()


def _count(shape: JsonValue) -> int:
    return sum(_count(v) for v in shape.values()) if isinstance(shape, dict) else 1


_tables: st.SearchStrategy[JsonValue] = _row_shapes.flatmap(
    lambda shape: st.lists(
        st.lists(_cells_scalars, min_size=_count(shape), max_size=_count(shape)).map(
            lambda leaves: _fill(shape, cast(list[JsonValue], leaves))
        ),
        min_size=1,
        max_size=4,
    ).map(lambda rows: cast(JsonValue, rows))
)
_json_with_tables: st.SearchStrategy[JsonValue] = st.recursive(
    _cells_scalars | _tables,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_table_keys, inner, max_size=4) | _tables,
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_json_with_tables)
def test_tables_round_trip(value: JsonValue) -> None:
    text = dump_yaml(value, tables=True)
    assert _read(text) == value
    assert dump_yaml(value, tables=True) == text  # deterministic


@given(_json_with_tables, st.integers(min_value=0, max_value=6))
def test_tables_indent_only_adds_leading_spaces(value: JsonValue, indent: int) -> None:
    plain = dump_yaml(value, tables=True).split("\n")
    indented = dump_yaml(value, indent=indent, tables=True).split("\n")
    assert indented == [" " * indent + line if line else "" for line in plain]


@given(_json)
def test_without_tables_nothing_changes_where_no_table_fits(value: JsonValue) -> None:
    def has_table(v: JsonValue) -> bool:
        if isinstance(v, dict):
            return any(has_table(x) for x in v.values()) or any("[" in k or "{" in k for k in v)
        if isinstance(v, list):
            return (bool(v) and all(isinstance(x, dict) and x for x in v)) or any(has_table(x) for x in v)
        return False

    if not has_table(value):
        assert dump_yaml(value, tables=True) == dump_yaml(value)
