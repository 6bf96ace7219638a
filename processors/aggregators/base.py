"""What a window metric is: one class holding one window's state of that metric. Pure logic, no I/O.

A window (windows/aggregate.py) holds one instance of every registered aggregator (this
package's modules). Each instance is fed batches of event columns, merges with the instance of
another window of the same series (panes into longer windows, exactly: the shared property test
checks merge(parts) == aggregate(whole) for every aggregator), round-trips through a JSON-able
state (the panes' states in Redis, tagged with `version`), and turns into named results.

Its `outputs` declare those results once: the Redis hash fields, the `window_rollups` columns
(added to the table at start-up when missing: sinks/clickhouse/rollup_columns.py) and the
columns of `inferwatch status --windows` are all derived from them.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from inferwatch.processors.event_batch import EventBatch

# The value types an output may have, as ClickHouse types (a map's keys come from producers).
KINDS = {"u64": "UInt64", "f64": "Float64", "map_u64": "Map(String, UInt64)", "map_f64": "Map(String, Float64)"}


@dataclass(frozen=True)
class Output:
    """One named result of an aggregator."""

    name: str
    kind: str  # a key of KINDS
    nullable: bool = False  # None when the window has nothing to say (e.g. no streamed response)
    stored: bool = True  # a column of window_rollups (else live in Redis only, e.g. rates)
    shown: bool = False  # a column of `inferwatch status --windows`
    # A map's Redis hash fields: this pattern with the key in place of {} (default "<name>:{}").
    redis_field: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):  # a column name and a hash field as it is
            raise ValueError(f"output {self.name!r}: lower-case letters, digits and _ only")
        if self.kind not in KINDS:
            raise ValueError(f"output {self.name}: kind {self.kind!r} not in {sorted(KINDS)}")
        if self.kind.startswith("map") and self.nullable:
            raise ValueError(f"output {self.name}: a map is empty, never NULL")

    @property
    def is_map(self) -> bool:
        return self.kind.startswith("map")

    @property
    def redis_fields(self) -> str:
        """A map's hash fields: the pattern with the key in place of {}."""
        return self.redis_field or f"{self.name}:{{}}"

    @property
    def clickhouse_type(self) -> str:
        return f"Nullable({KINDS[self.kind]})" if self.nullable else KINDS[self.kind]


class Aggregator(ABC):
    """One metric of one window. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]  # unique; the key of its state
    outputs: ClassVar[tuple[Output, ...]]
    version: ClassVar[int] = 1  # bump when to_state's shape changes: older states are then not merged
    # Place among the metrics (outputs, columns): lower first.
    order: ClassVar[int] = 100
    # True for what cannot be added up across Kafka partitions (sketches): not kept for the
    # per-partition parts of a series whose key set spans partitions (windows/keys.py); its
    # outputs must be nullable, as they are None there.
    whole_series_only: ClassVar[bool] = False

    @abstractmethod
    def add(self, batch: EventBatch, rows: np.ndarray) -> None:
        """Add the events at these indices of the batch (all of one series and window)."""

    @abstractmethod
    def merge(self, other: Aggregator) -> None:
        """Add another window's state of this metric (same series, another pane or partition)."""

    @abstractmethod
    def to_state(self) -> Any:
        """JSON-able and exact: from_state(to_state()) merges and results like this one."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: Any) -> Aggregator: ...

    @abstractmethod
    def result(self, events: int, window_seconds: int) -> dict[str, Any]:
        """A value for each of `outputs`, by name; `events` (> 0) is the window's event count."""
