"""What checking every event costs the decoders, next to decoding it (the baseline), in one process.

The worker's decoders (processors/decoding.py) decode each batch message with fastavro, check
its events against the rules of a valid event (schemas/validation.py), and build the numpy
columns of the valid ones. This times each step on the same batch messages of modelled traffic
(`producer_batch_events` events each, all valid: the common case), best of --repeat.
Prints a table and, last, one JSON line.
Usage: python bench/event_validation.py [--events 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.keys import parse_keysets
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.validation import event_rules, invalid_events
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings


def best_us_per_event(fn, n_events: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best / n_events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    settings = Settings()
    codec = EventCodec(local_schema_ids())
    now_ms = int(time.time() * 1000)
    events = TrafficModel(seed=1).events(np.sort(now_ms - np.arange(args.events, dtype=np.int64)))
    size = settings.producer_batch_events
    messages = [codec.encode_batch(events[i:i + size]) for i in range(0, len(events), size)]
    decoded = [codec.decode(m) for m in messages]
    rules, keysets = event_rules(settings.event_limits), parse_keysets(settings.window_keys)
    refs = [np.full(len(batch), now_ms, dtype=np.int64) for batch in decoded]
    assert all(not invalid_events(rules, batch, ref) for batch, ref in zip(decoded, refs))

    n = len(events)
    decode_us = best_us_per_event(lambda: [codec.decode(m) for m in messages], n, args.repeat)
    validate_us = best_us_per_event(lambda: [invalid_events(rules, b, r) for b, r in zip(decoded, refs)], n,
                                    args.repeat)
    columns_us = best_us_per_event(lambda: [EventBatch.from_events(b, keysets) for b in decoded], n, args.repeat)

    print(f"{n:,} events in {len(messages):,} batch messages, best of {args.repeat}")
    print(f"{'step':44} {'µs/event':>9} {'vs decode':>10}")
    for name, us in (("baseline: fastavro decode", decode_us), ("check against the rules", validate_us),
                     ("numpy columns (EventBatch)", columns_us)):
        print(f"{name:44} {us:>9.2f} {us / decode_us:>10.0%}")
    print(json.dumps({"bench": "event_validation", "events": n, "validate_us_per_event": round(validate_us, 3),
                      "columns_us_per_event": round(columns_us, 3),
                      "baseline_decode_us_per_event": round(decode_us, 3),
                      "validate_vs_decode": round(validate_us / decode_us, 3)}))


if __name__ == "__main__":
    main()
