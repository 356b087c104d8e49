import json

from threadloom.parsing._quotes import requote

FENCE = "`" * 3


def test_backtick_and_triple_quoted_values_become_json_strings() -> None:
    text = '{"code": `print("hi")`, "doc": """\n    line one\n      line two\n    """}'
    assert json.loads(requote(text)) == {"code": 'print("hi")', "doc": "line one\n  line two"}


def test_a_fenced_value_drops_its_info_line_and_dedents() -> None:
    text = f'{{"code": {FENCE}ts main.ts\n    let a = {{}}}}]);\n{FENCE},\n"type": "code"}}'
    assert json.loads(requote(text)) == {"code": "let a = {}}]);", "type": "code"}


def test_text_outside_values_and_inside_strings_is_untouched() -> None:
    assert requote("no quotes here") == "no quotes here"
    text = '{"a": "keep `these` and \\"\\"\\" as they are"}'
    assert requote(text) == text
    top_level = f"Here:\n{FENCE}json\n{{}}\n{FENCE}"
    assert requote(top_level) == top_level  # a fence outside any object is Markdown, not a value


def test_an_unclosed_quote_is_left_alone() -> None:
    assert requote('{"a": `never closed') == '{"a": `never closed'
