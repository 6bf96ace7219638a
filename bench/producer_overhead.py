"""What instrumenting a service costs the caller, against a bare confluent-kafka produce().

Runs against a real local broker (its own stack under /tmp, started and stopped here):
1. baseline: the caller builds a small dict, json-encodes it and calls Producer.produce() itself
   (what a hand-rolled integration would pay per request), timed per call;
2. inferwatch: a `with monitor.track(...)` block around a no-op "LLM call" that records usage,
   timed per call: what the SDK adds to the request path;
3. sustained: events/s one process pushes through the SDK to the broker (delivered, not queued).

Prints a table and, last, one JSON line with the headline figures and the baseline.
Usage: python bench/producer_overhead.py [--calls 50000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from confluent_kafka import Producer

from inferwatch.deploy import local_stack
from inferwatch.producers import Monitor
from inferwatch.settings import Settings


def per_call_us(fn, calls: int) -> np.ndarray:
    timings = np.empty(calls)
    clock = time.perf_counter_ns
    for i in range(calls):
        start = clock()
        fn(i)
        timings[i] = clock() - start
    return timings / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50_000)
    args = parser.parse_args()
    settings = Settings(state_dir=Path(tempfile.mkdtemp(prefix="iw-bench-producer-")))
    local_stack.up(settings, progress=lambda line: print(f"[stack] {line}"))
    try:
        bare = Producer(settings.kafka_config(**{"linger.ms": 5, "compression.type": "lz4"}))

        def bare_produce(i: int) -> None:
            value = json.dumps({"model": "gpt-4o-mini", "latency_ms": 12.5, "input_tokens": 12,
                                "output_tokens": 30, "i": i}).encode()
            bare.produce(settings.events_topic + "-bare", value=value)
            if i % 1000 == 0:
                bare.poll(0)

        local_stack.create_topics(settings.model_copy(update={
            "events_topic": settings.events_topic + "-bare", "dlq_topic": settings.dlq_topic + "-bare",
            "feedback_topic": settings.feedback_topic + "-bare"}), settings.resolved_kafka_bootstrap, lambda _: None)
        bare_produce(0)
        bare_us = per_call_us(bare_produce, args.calls)
        bare.flush(30)

        monitor = Monitor("bench-svc", settings)
        response = {"usage": {"prompt_tokens": 12, "completion_tokens": 30}}

        def tracked_call(i: int) -> None:
            with monitor.track(model="gpt-4o-mini", route="/v1/chat", tenant_id="acme") as call:
                call.record_response(response)

        tracked_call(0)
        sdk_us = per_call_us(tracked_call, args.calls)
        assert monitor.flush(60)

        # Sustained: as fast as the SDK's thread turns calls into delivered events. The calling
        # loop keeps the in-memory queue under its cap (a real service calls far slower than this
        # loop; the cap's drop policy is not what is measured here).
        delivered_before = monitor._publisher.events.stats.events_delivered
        sustained_calls = args.calls * 4
        queue = monitor._publisher._queue
        started = time.perf_counter()
        for i in range(sustained_calls):
            tracked_call(i)
            if i % 1000 == 0:
                while len(queue) > settings.producer_queue_events // 2:
                    time.sleep(0.001)
        assert monitor.flush(120)
        deadline = time.monotonic() + 120
        stats = monitor._publisher.events.stats
        while stats.events_delivered - delivered_before < sustained_calls and time.monotonic() < deadline:
            monitor._publisher.events.producer.flush(0.1)
            time.sleep(0.05)
        sustained_s = time.perf_counter() - started
        delivered = stats.events_delivered - delivered_before
        dropped = monitor.dropped_events
        monitor.close()
    finally:
        local_stack.down(settings, progress=lambda line: print(f"[stack] {line}"))

    rows = [
        ("bare confluent produce()", np.median(bare_us), np.percentile(bare_us, 99)),
        ("inferwatch track() + publish", np.median(sdk_us), np.percentile(sdk_us, 99)),
    ]
    print(f"\ncaller-side cost per event over {args.calls:,} calls (µs)")
    print(f"{'path':32} {'median':>8} {'p99':>8}")
    for name, median, p99 in rows:
        print(f"{name:32} {median:8.2f} {p99:8.2f}")
    print(f"\nsustained through the SDK: {delivered:,} events delivered in {sustained_s:.2f}s = "
          f"{delivered / sustained_s:,.0f} events/s (one process, one calling thread); dropped: {dropped}")
    print(json.dumps({
        "bench": "producer_overhead",
        "sdk_caller_median_us": round(float(np.median(sdk_us)), 2),
        "sdk_caller_p99_us": round(float(np.percentile(sdk_us, 99)), 2),
        "baseline_bare_produce_median_us": round(float(np.median(bare_us)), 2),
        "baseline_bare_produce_p99_us": round(float(np.percentile(bare_us, 99)), 2),
        "ratio_sdk_to_bare_median": round(float(np.median(sdk_us) / np.median(bare_us)), 2),
        "sustained_events_per_s": round(delivered / sustained_s),
        "delivered": delivered,
        "dropped": dropped,
        "target_median_us": 15,
    }))


if __name__ == "__main__":
    main()
