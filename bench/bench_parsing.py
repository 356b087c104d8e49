"""The parser on the shared corpora (../shared/corpora): share parsed exactly, share accepted wrongly.

`python bench/bench_parsing.py --failures` lists every row that did not come out as expected.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threadloom import ParseError
from threadloom.parsing import parse_json_schema

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


@dataclass
class Tally:
    rows: int = 0
    exact: int = 0
    accepted_wrong: int = 0
    refused: int = 0
    expected_errors: int = 0
    failures: list[str] = field(default_factory=list[str])


def same(a: Any, b: Any) -> bool:
    """JSON equality that tells 1 from 1.0 from true, as a typed result would."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def score(path: Path) -> Tally:
    tally = Tally()
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("mode", "complete") != "complete":
            continue  # partial/streaming rows test a streaming parser, which threadloom does not have
        tally.rows += 1
        try:
            value = parse_json_schema(row["raw"], row["schema"])
        except ParseError:
            value, ok = None, False
        else:
            ok = True
        if row["expect_error"]:
            tally.expected_errors += 1
            if ok:
                tally.accepted_wrong += 1
                tally.failures.append(f"{row['id']}: accepted {json.dumps(value)[:120]} (expected an error)")
            else:
                tally.exact += 1
        elif ok and same(value, row["expected"]):
            tally.exact += 1
        else:
            tally.refused += not ok
            got = json.dumps(value)[:120] if ok else "ParseError"
            tally.failures.append(f"{row['id']}: got {got}, expected {json.dumps(row['expected'])[:120]}")
    return tally


def run(show_failures: bool = False) -> str:
    if not CORPORA.is_dir():
        return f"## Parser corpora\n\nSkipped: {CORPORA} is not there (it comes with the shared/ folder)."
    lines = [
        "## Parser corpora",
        "",
        "`parse_json_schema(raw, schema)` on every `complete` row of `../shared/corpora` (the partial and",
        "streaming BAML rows are left out: threadloom parses finished answers). *Exact* counts rows whose",
        "result equals `expected` (1, 1.0 and true told apart), and rows expected to fail that raised",
        "`ParseError`; *accepted wrongly* counts rows expected to fail that returned a value.",
        "",
        "| file | rows | exact | exact % | accepted wrongly | refused (ParseError) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    details: list[str] = []
    for path in sorted(CORPORA.glob("*.jsonl")):
        t = score(path)
        lines.append(
            f"| `{path.name}` | {t.rows} | {t.exact} | {100 * t.exact / max(t.rows, 1):.1f}% "
            f"| {t.accepted_wrong} | {t.refused} |"
        )
        if show_failures:
            details += [f"\n### {path.name}", *t.failures]
    return "\n".join([*lines, "", JUDGED_DIFFERENTLY, *details])


JUDGED_DIFFERENTLY = """Rows we judge differently from the reference (run with `--failures` for the list):

- *Refused where the reference invents data.* json_repair's `salvage` rows fill missing required
  fields (`""`, `0`, `[]`) or drop invalid items, and BAML turns an answer that names no option
  into `null`. threadloom raises `ParseError` instead: a made-up required value would run a tool
  with arguments nobody chose, while the error goes back to the model, which then answers again.
- *Streaming and logging rows.* json_repair's `stream_stable` and `logging` rows pin the repair of
  half-written text and the shape of its log; threadloom parses finished answers and has no log.
- *Unquoted multi-line values and unescaped inner quotes* (BAML's `class_2`, `bad_inner_json`,
  `markdown_without_quotes`): threadloom reads them the way json-repair repairs them, which splits
  some values at an inner quote or colon. A jsonish tokenizer of our own could follow BAML here;
  for now these stay refused or read differently.
- *Number formats* such as `1/5` for 0.2 and `12,11` for 12.11 are not read as numbers."""


if __name__ == "__main__":
    print(run(show_failures="--failures" in sys.argv))
