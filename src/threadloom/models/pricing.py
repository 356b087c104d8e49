"""What a thread's model calls cost: tokens (from the thread's events) times a price table you can override."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from ..exceptions import UserError
from ..state import Usage
from ..thread import Thread

__all__ = ["PRICES", "PRICES_AS_OF", "Cost", "Price", "cost", "load_prices", "price_for"]


@dataclass(frozen=True, slots=True)
class Price:
    """A model's list price in US dollars per million tokens."""

    input: float
    """Per million prompt tokens that were not cached."""
    output: float
    """Per million tokens the model wrote."""
    cached: float | None = None
    """Per million prompt tokens read from the provider's cache; the input price when None."""


PRICES: Mapping[str, Price] = MappingProxyType(
    {
        # OpenAI, standard tier (https://platform.openai.com/docs/pricing).
        "gpt-5": Price(1.25, 10.0, 0.125),
        "gpt-5-mini": Price(0.25, 2.0, 0.025),
        "gpt-5-nano": Price(0.05, 0.40, 0.005),
        "gpt-4.1": Price(2.0, 8.0, 0.50),
        "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
        "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
        "gpt-4o": Price(2.50, 10.0, 1.25),
        "gpt-4o-mini": Price(0.15, 0.60, 0.075),
        "o3": Price(2.0, 8.0, 0.50),
        "o4-mini": Price(1.10, 4.40, 0.275),
        # Anthropic (https://www.anthropic.com/pricing), cache reads; cache writes (1.25x input) are
        # not told apart in `Usage` and are priced as input.
        "claude-opus-4-1": Price(15.0, 75.0, 1.50),
        "claude-sonnet-4-5": Price(3.0, 15.0, 0.30),
        "claude-sonnet-4": Price(3.0, 15.0, 0.30),
        "claude-haiku-4-5": Price(1.0, 5.0, 0.10),
        "claude-3-5-haiku": Price(0.80, 4.0, 0.08),
    }
)
"""List prices on `PRICES_AS_OF`; pass `prices=` to `cost` for yours (negotiated, self-hosted, new)."""

PRICES_AS_OF = date(2026, 11, 25)
"""The day `PRICES` was copied from the providers' pricing pages: prices move, so reports name it."""

PriceLike = Price | tuple[float, float] | tuple[float, float, float]
"""A `Price`, or `(input, output)` / `(input, output, cached)` dollars per million tokens."""


@dataclass(frozen=True, slots=True)
class Cost:
    """What model calls cost, in US dollars."""

    total: float
    """The sum over every priced model."""
    by_model: Mapping[str, float]
    """Per model name, as the thread records it."""
    unpriced: tuple[str, ...] = ()
    """Models that used tokens but have no price in the table (left out of `total`)."""


def price_for(model: str, prices: Mapping[str, PriceLike] | None = None) -> Price | None:
    """The price of `model`: an exact entry, else the longest entry the name starts with.

    Dated and routed names find their family: `gpt-4.1-mini-2025-04-14` and `openai/gpt-4.1-mini`
    are priced as `gpt-4.1-mini` (not `gpt-4.1`).

    Args:
        model: The model name a completion reported.
        prices: Entries laid over `PRICES` (yours win).

    Returns:
        The price, or None when no entry fits.

    Raises:
        UserError: A price in `prices` is not a `Price` or a tuple of two or three numbers.
    """
    table = {**PRICES, **(prices or {})}
    for name in (model, model.rsplit("/", 1)[-1]):
        if name in table:
            return _as_price(name, table[name])
        family = max((key for key in table if name.startswith(key)), key=len, default=None)
        if family is not None:
            return _as_price(family, table[family])
    return None


def cost(usage: Thread | Mapping[str, Usage], *, prices: Mapping[str, PriceLike] | None = None) -> Cost:
    """Turn tokens into dollars: a thread's (`thread.usage_by_model`) or any per-model usage.

    Example:
        ```python
        from threadloom.models import Usage, cost

        spent = cost({"gpt-4.1-mini": Usage(input_tokens=1_000_000, output_tokens=500_000, cached_tokens=400_000)})
        assert round(spent.total, 2) == 0.24 + 0.04 + 0.80  # uncached in, cached in, out

        mine = cost({"my-vllm": Usage(input_tokens=2_000_000)}, prices={"my-vllm": (0.05, 0.10)})
        assert round(mine.total, 2) == 0.10 and mine.unpriced == ()
        ```

    Args:
        usage: A thread, or tokens per model name.
        prices: Entries laid over `PRICES`, model name to `Price` or `(input, output[, cached])`
            dollars per million tokens.

    Returns:
        The total, per model, and which models had no price.
    """
    per_model = usage.usage_by_model if isinstance(usage, Thread) else usage
    by_model: dict[str, float] = {}
    unpriced: list[str] = []
    for model, used in per_model.items():
        price = price_for(model, prices)
        if price is None:
            if used.input_tokens or used.output_tokens:
                unpriced.append(model)
            continue
        cached = min(used.cached_tokens, used.input_tokens)
        cached_price = price.input if price.cached is None else price.cached
        dollars = (used.input_tokens - cached) * price.input + cached * cached_price + used.output_tokens * price.output
        by_model[model] = dollars / 1_000_000
    return Cost(sum(by_model.values()), MappingProxyType(by_model), tuple(unpriced))


def _as_price(name: str, value: PriceLike) -> Price:
    if isinstance(value, Price):
        return value
    if isinstance(value, tuple) and len(value) in (2, 3):  # pyright: ignore[reportUnnecessaryIsInstance]
        return Price(*value)
    raise UserError(f"price for {name!r} must be a Price or (input, output[, cached]) per million tokens")


_Dollars = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _PriceEntry(BaseModel):
    """One entry of a price file: `{input, output, cached}` or `[input, output(, cached)]`."""

    model_config = ConfigDict(extra="forbid")  # a misspelt `cahced` must not price cache reads as input

    input: _Dollars
    output: _Dollars
    cached: _Dollars | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            items: list[Any] = list(value)  # pyright: ignore[reportUnknownArgumentType]
            if len(items) not in (2, 3):
                raise ValueError("a list must be [input, output] or [input, output, cached]")
            return dict(zip(("input", "output", "cached"), items, strict=False))
        return value


_PRICE_FILE = TypeAdapter(dict[str, _PriceEntry])


def load_prices(path: str | Path) -> dict[str, Price]:
    r"""A price table from a YAML or JSON file, to pass as `prices=` (model name to dollars per million tokens).

    Each entry is `{input: ..., output: ..., cached: ...}` (`cached` optional) or a list
    `[input, output]` / `[input, output, cached]`. A `.json` file is read as JSON, anything else as
    YAML (which needs PyYAML, in the `evals` extra).

    Example:
        ```python
        import tempfile
        from pathlib import Path

        from threadloom.models import Price, load_prices

        path = Path(tempfile.mkdtemp()) / "prices.yaml"
        path.write_text("my-vllm: {input: 0.05, output: 0.10}\ngpt-4.1-mini: [0.30, 1.20, 0.075]\n")
        assert load_prices(path) == {"my-vllm": Price(0.05, 0.10), "gpt-4.1-mini": Price(0.30, 1.20, 0.075)}
        ```

    Raises:
        UserError: The file cannot be read or parsed, or an entry is not a price (each problem named).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the price file {str(path)!r}: {exc}") from exc
    data = _parse(path, text)
    try:
        entries = _PRICE_FILE.validate_python({} if data is None else data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'the file'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise UserError(f"{str(path)!r} is not a price table (model: {{input, output, cached}}): {problems}") from exc
    return {name: Price(entry.input, entry.output, entry.cached) for name, entry in entries.items()}


def _parse(path: Path, text: str) -> object:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{str(path)!r} is not JSON: {exc}") from exc
    try:
        import yaml
    except ImportError as exc:
        raise UserError(
            f"reading the YAML price file {str(path)!r} needs PyYAML (pip install 'threadloom[evals]'); or write it as .json"
        ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{str(path)!r} is not YAML: {' '.join(str(exc).split())}") from exc
