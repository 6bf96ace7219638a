"""The pure logic (windows, aggregators, sketches, rules, event validation) imports no I/O
client: it is tested directly, and a newcomer adding a metric or a rule needs no stack."""

import subprocess
import sys

PURE = [
    "inferwatch.processors.event_batch", "inferwatch.processors.windows.aggregate",
    "inferwatch.processors.windows.panes", "inferwatch.processors.windows.longer",
    "inferwatch.processors.windows.feedback", "inferwatch.processors.windows.watermark",
    "inferwatch.processors.sketches.latency_sketch", "inferwatch.processors.aggregators",
    "inferwatch.processors.rules", "inferwatch.processors.drift.profile", "inferwatch.schemas.validation",
]
IO_CLIENTS = ["confluent_kafka", "aiokafka", "faust", "mode", "redis", "clickhouse_connect", "chdb", "pyarrow"]


def test_pure_packages_import_no_kafka_faust_redis_or_clickhouse_module():
    # Every aggregator and rule module too: the registries import them all.
    code = (f"import sys\nfor name in {PURE!r}: __import__(name)\n"
            "from inferwatch.processors import aggregators, rules\naggregators.registered(); rules.registered()\n"
            f"print(sorted(m for m in {IO_CLIENTS!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
