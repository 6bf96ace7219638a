"""Runs the ClickHouse sink alone in a process, for the crash test.

    python clickhouse_sink_process.py CONFIG.toml [--kill-before-commit]

With --kill-before-commit the process SIGKILLs itself at its first commit, i.e. after the rows
of its first batch are in ClickHouse and before their offsets are committed. Otherwise it runs
until SIGTERM, then stops the sink (insert and commit what it read) and closes ClickHouse.
"""

import os
import signal
import sys
import threading

from inferwatch.settings import Settings
from inferwatch.sinks.clickhouse.clickhouse_thread import ClickHouseThread
from inferwatch.sinks.clickhouse.kafka_sink import ClickHouseEventSink


def main() -> None:
    os.environ["INFERWATCH_CONFIG"] = sys.argv[1]
    if "--kill-before-commit" in sys.argv:
        ClickHouseEventSink._commit = lambda self, offsets: os.kill(os.getpid(), signal.SIGKILL)
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminated.set())
    settings = Settings()
    clickhouse = ClickHouseThread(settings)
    sink = ClickHouseEventSink(settings, clickhouse)
    sink.start()
    terminated.wait()
    sink.stop()
    clickhouse.close()


if __name__ == "__main__":
    main()
