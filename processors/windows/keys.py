"""What a window is keyed by: key sets, and the series key of one window. Pure logic, no I/O.

A key set names the event fields that define a series, e.g. ``model=service,model,model_version``.
Every event feeds one window per key set: by default the model series (latency, errors: what alerts
watch), (tenant_id, model) for cost and tokens per customer, and (route) for traffic per endpoint.

Kafka messages are keyed by (service, model) (schemas/wire.py), so a key set that includes both
fields has each series in one partition, hence read by one worker: its windows are complete and
carry every metric, percentiles included. A key set without them (tenant, route) *spans
partitions*: several workers each see part of a series. Its windows are kept per source partition
and hold only additive metrics (counts, tokens, cost, error types, quality sums), so the partial
windows of a series add up exactly, in a query or a reader, to what one worker would have
computed. (Percentiles of such a series would need the partitions' sketches merged in one place.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inferwatch.schemas.wire import PARTITION_KEY_FIELDS

# Event fields a series may be keyed by: the schema's required string fields, and any of the
# event's `attributes` as `attributes.<name>` ('' where an event does not have it): groups such as
# a language or a user segment, whose every window and drift score then exists per group.
KEY_FIELDS = ("service", "route", "model", "model_version", "tenant_id")
ATTRIBUTE_PREFIX = "attributes."

_FIELD = r"(?:[a-z_]+|attributes\.[a-z0-9_]+)"
_KEYSET = re.compile(rf"^([a-z][a-z0-9_]*)=({_FIELD}(?:,{_FIELD})*)$")


@dataclass(frozen=True)
class KeySet:
    name: str
    fields: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> KeySet:
        """"tenant=tenant_id,model": a name, then the event fields of its key."""
        match = _KEYSET.match(text.replace(" ", ""))
        if not match:
            raise ValueError(f"key set {text!r}: expected <name>=<field>[,<field>...], e.g. tenant=tenant_id,model "
                             f"or language=service,model,{ATTRIBUTE_PREFIX}language")
        fields = tuple(match[2].split(","))
        unknown = [f for f in fields if f not in KEY_FIELDS and not f.startswith(ATTRIBUTE_PREFIX)]
        if unknown or len(set(fields)) != len(fields):
            raise ValueError(f"key set {text!r}: fields must be distinct, among {', '.join(KEY_FIELDS)} "
                             f"and {ATTRIBUTE_PREFIX}<name>")
        return cls(match[1], fields)

    @property
    def attributes(self) -> bool:
        """Whether a field is one of the event's attributes (then `key_of` keys an event)."""
        return any(f.startswith(ATTRIBUTE_PREFIX) for f in self.fields)

    def key_of(self, event: dict):
        """An event's key: as itemgetter(*fields) gives it (the value itself for one field)."""
        key = tuple(event["attributes"].get(f[len(ATTRIBUTE_PREFIX):], "") if f.startswith(ATTRIBUTE_PREFIX)
                    else event[f] for f in self.fields)
        return key if len(key) > 1 else key[0]

    @property
    def spans_partitions(self) -> bool:
        return not set(PARTITION_KEY_FIELDS) <= set(self.fields)


def parse_keysets(texts: list[str]) -> list[KeySet]:
    keysets = [KeySet.parse(text) for text in texts]
    if not keysets:
        raise ValueError("at least one key set is needed")
    names = [k.name for k in keysets]
    if len(set(names)) != len(names):
        raise ValueError(f"key set names must be distinct: {names}")
    if keysets[0].spans_partitions:
        raise ValueError(f"the first key set ({keysets[0].name}) is the one alerts watch: it needs "
                         f"{' and '.join(PARTITION_KEY_FIELDS)} among its fields to have percentiles")
    return keysets


@dataclass(frozen=True)
class SeriesKey:
    """The key of one series: its key set and the values of that set's fields."""

    keyset: str
    fields: tuple[str, ...]
    values: tuple[str, ...]

    def as_dict(self) -> dict[str, str]:
        return dict(zip(self.fields, self.values))

    @property
    def label(self) -> str:
        """The values joined by ``|``, e.g. ``chat-api|llama-3.1-8b|v7``: the series in Redis keys
        and rows. Values come from producers, so ``%``, ``|`` and ``:`` (which separates a Redis
        key's parts) inside a value are percent-encoded (``%`` first): distinct values, distinct
        labels, and every other character as it is."""
        return "|".join(v.replace("%", "%25").replace("|", "%7C").replace(":", "%3A") for v in self.values)
