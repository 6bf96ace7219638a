"""Cost of a request from a price table shipped as data (prices.json) plus the user's overrides.

Prices are USD per 1M tokens. A table file, shipped or override, is JSON or TOML shaped as
`{"models": {name: {"usd_per_1m_input": x, "usd_per_1m_output": y}}}`; the "models" level may be
left out, keys starting with "_" are comments and other fields of an entry (source) are notes.
Overrides replace whole model entries. Model names match case-insensitively.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Provider snapshot suffixes (gpt-4o-2024-08-06, claude-3-5-sonnet-20241022, ...-latest) bill at
# the base model's price; only these are stripped, never other suffixes, because a fine-tuned
# variant (e.g. -ft) may well have a price of its own.
_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


@dataclass(frozen=True)
class ModelPrice:
    usd_per_1m_input: float
    usd_per_1m_output: float


def _normalize(model: str) -> str:
    return model.strip().lower()


def _price_value(value: Any, origin: str, model: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{origin}: model {model!r}: {field} must be a non-negative number, got {value!r}")
    return float(value)


def _parse(data: Any, origin: str) -> dict[str, ModelPrice]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{origin}: expected a table of models, got {type(data).__name__}")
    table = data["models"] if "models" in data else data
    if not isinstance(table, Mapping):
        raise ValueError(f"{origin}: 'models' must be a table of models, got {type(table).__name__}")
    prices = {}
    for model, entry in table.items():
        if not isinstance(model, str):
            raise ValueError(f"{origin}: model names must be strings, got {model!r}")
        if model.startswith("_"):
            continue
        if not isinstance(entry, Mapping):
            raise ValueError(f"{origin}: model {model!r}: expected a table with usd_per_1m_input and "
                             f"usd_per_1m_output, got {entry!r}")
        missing = [f for f in ("usd_per_1m_input", "usd_per_1m_output") if f not in entry]
        if missing:
            raise ValueError(f"{origin}: model {model!r}: missing {', '.join(missing)}")
        prices[_normalize(model)] = ModelPrice(
            _price_value(entry["usd_per_1m_input"], origin, model, "usd_per_1m_input"),
            _price_value(entry["usd_per_1m_output"], origin, model, "usd_per_1m_output"),
        )
    return prices


def _read_file(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ValueError(f"{path}: price overrides must be a .json or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read price overrides: {e}") from e
    try:
        return json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: not valid {suffix[1:].upper()}: {e}") from e


class PriceTable:
    def __init__(self, prices: Mapping[str, ModelPrice]):
        self._prices = {_normalize(m): p for m, p in prices.items()}
        # Models already warned about. Two threads may both warn once; harmless, so no lock.
        self._warned: set[str] = set()

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | str | os.PathLike | None = None) -> PriceTable:
        """The shipped table with `overrides` (a dict, or a JSON/TOML file path) merged over it.

        Raises ValueError naming the file (or "price overrides" for a dict) and the problem.
        """
        shipped = resources.files(__package__).joinpath("prices.json").read_text(encoding="utf-8")
        prices = _parse(json.loads(shipped), "prices.json")
        if isinstance(overrides, (str, os.PathLike)):
            path = Path(overrides)
            prices.update(_parse(_read_file(path), str(path)))
        elif overrides is not None:
            prices.update(_parse(overrides, "price overrides"))
        return cls(prices)

    def price(self, model: str) -> ModelPrice | None:
        name = _normalize(model)
        return self._prices.get(name) or self._prices.get(_SNAPSHOT_SUFFIX.sub("", name))

    def cost_usd(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """Cost in USD, or None for a model without a price (logged once per model and table)."""
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError(f"token counts must be non-negative, got {input_tokens}, {output_tokens}")
        price = self.price(model)
        if price is None:
            name = _normalize(model)
            if name not in self._warned:
                self._warned.add(name)
                log.warning("no price for model %r: cost_usd is null; add it with PriceTable.load(overrides)", model)
            return None
        return (input_tokens * price.usd_per_1m_input + output_tokens * price.usd_per_1m_output) / 1e6
