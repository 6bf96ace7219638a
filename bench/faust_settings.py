"""What each Faust setting buys: messages/s of a bare Faust agent, settings changed one at a time.

Against a real local stack (its own state dir under /tmp, started and stopped here), one run:
N small messages are produced to a topic of its own; then, each in a fresh process (the event
loop policy is process-wide) and a consumer group of its own, a Faust agent that only counts
`stream.take` batches reads all N, under configurations that change one setting at a time,
cumulatively: Faust's defaults, then the settings the worker uses (processors/app.py,
processors/worker.py), then ones it does not use, to show why. The clock runs from the first message to the N-th (the group join is not
counted). Baseline in the same run: a confluent-kafka `consume(1000)` loop over the same messages.
This isolates Faust's own per-message cost; the worker pays it per *batch message* of ~500 events.

Prints a table and, last, one JSON line with the headline figures and the baseline.
Usage: python bench/faust_settings.py [--messages 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TAKE = 1000
PARTITIONS = 4
# (name, what changes, cumulatively, whether the worker uses it: processors/app.py, worker.py).
CONFIGS = [
    ("faust defaults", {}, True),
    ("+ uvloop event loop", {"loop": "uvloop"}, True),
    # The worker sets it so an ack is committed without waiting for the stream buffer to drain.
    ("+ stream_wait_empty=False", {"stream_wait_empty": False}, True),
    ("+ 8 MiB fetch per partition, 16k stream buffer",
     {"consumer_max_fetch_size": 8 * 1024**2, "stream_buffer_maxsize": 16_384}, False),
    # Faust has no switch for its Monitor sensor; the Monitor setting takes a class, so this one
    # keeps what Faust itself calls but skips the per-message bookkeeping.
    ("+ Monitor without per-message hooks", {"Monitor": "__main__:PerMessageQuietMonitor"}, False),
]


def _quiet_monitor():
    from faust.sensors.monitor import Monitor

    class PerMessageQuietMonitor(Monitor):
        def on_message_in(self, tp, offset, message):
            pass

        def on_stream_event_in(self, tp, offset, stream, event):
            return None

        def on_stream_event_out(self, tp, offset, stream, event, state=None):
            pass

        def on_message_out(self, tp, offset, message):
            pass

    return PerMessageQuietMonitor


def child_faust(bootstrap: str, topic: str, n: int, config: dict, result: Path) -> None:
    """Read n messages with a counting Faust agent; write seconds from the first to the n-th to `result`."""
    import asyncio

    if config.pop("loop", None) == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    import faust
    from faust.worker import Worker

    app = faust.App(f"faust-bench-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}", web_enabled=False,
                    datadir=tempfile.mkdtemp(prefix="faust-bench-"), consumer_auto_offset_reset="earliest",
                    topic_partitions=PARTITIONS, **config)
    source = app.topic(topic, key_serializer="raw", value_serializer="raw")
    seen = {"n": 0, "first": None}

    @app.agent(source)
    async def count(stream):
        async for batch in stream.take(TAKE, within=1.0):
            if seen["first"] is None:
                seen["first"] = time.perf_counter()
            seen["n"] += len(batch)
            if seen["n"] >= n:
                result.write_text(str(time.perf_counter() - seen["first"]))
                os._exit(0)  # a bench child: no clean shutdown to wait for

    Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


def baseline_confluent(bootstrap: str, topic: str, n: int) -> float:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    read, first = 0, None
    while read < n:
        messages = consumer.consume(1000, timeout=1.0)
        if messages and first is None:
            first = time.perf_counter()
        read += sum(1 for m in messages if m.error() is None)
    seconds = time.perf_counter() - first
    consumer.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # index into CONFIGS, run in a fresh process
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        globals()["PerMessageQuietMonitor"] = _quiet_monitor()
        config = {}
        for _, change, _ in CONFIGS[:int(args.child) + 1]:  # cumulative
            config.update(change)
        child_faust(args.bootstrap, args.topic, args.messages, config, args.result)
        return

    from confluent_kafka import Producer

    from inferwatch.deploy import local_stack
    from inferwatch.settings import Settings

    topic = f"faust-bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(state_dir=Path(tempfile.mkdtemp(prefix="iw-bench-faust-")), kafka_partitions=PARTITIONS,
                        events_topic=topic, dlq_topic=f"{topic}.dlq", feedback_topic=f"{topic}.feedback")
    local_stack.up(settings, progress=lambda line: print(f"[stack] {line}"))
    try:
        bootstrap = settings.resolved_kafka_bootstrap
        local_stack.create_topics(settings, bootstrap, progress=lambda line: print(f"[stack] {line}"))
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        payload = os.urandom(100)
        for i in range(args.messages):
            while True:
                try:
                    producer.produce(topic, key=str(i % 64).encode(), value=payload)
                    break
                except BufferError:
                    producer.poll(0.05)
        assert producer.flush(60) == 0
        baseline_s = baseline_confluent(bootstrap, topic, args.messages)
        results = []
        for index, (name, _, _) in enumerate(CONFIGS):
            result = settings.state_dir / f"faust-bench-{index}.txt"
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(index), "--bootstrap", bootstrap, "--topic", topic,
                 "--messages", str(args.messages), "--result", str(result)],
                capture_output=True, text=True, timeout=600,
            )
            if not result.exists():
                raise RuntimeError(f"{name}: the Faust child failed:\n{out.stderr[-2000:]}")
            results.append((name, float(result.read_text())))
    finally:
        local_stack.down(settings, progress=lambda line: print(f"[stack] {line}"))

    n = args.messages
    print(f"\n{n:,} messages of 100 bytes, {PARTITIONS} partitions, stream.take({TAKE}); each row adds to the one above")
    print(f"{'configuration':50} {'msg/s':>10} {'µs/msg':>8} {'vs previous':>12} {'worker':>7}")
    previous = None
    for (name, seconds), (_, _, adopted) in zip(results, CONFIGS):
        change = f"{previous / seconds:>11.2f}x" if previous else f"{'':>12}"
        print(f"{name:50} {n / seconds:>10,.0f} {seconds / n * 1e6:>8.1f} {change} {'yes' if adopted else 'no':>7}")
        previous = seconds
    print(f"{'baseline: confluent-kafka consume(1000)':50} {n / baseline_s:>10,.0f} {baseline_s / n * 1e6:>8.1f}")
    print(json.dumps({
        "bench": "faust_settings",
        "messages": n,
        **{f"msgs_per_s[{name}]": round(n / seconds) for name, seconds in results},
        "worker_config_vs_defaults": round(results[0][1] / results[sum(a for *_, a in CONFIGS) - 1][1], 2),
        "baseline_confluent_consume_msgs_per_s": round(n / baseline_s),
    }))


if __name__ == "__main__":
    main()
