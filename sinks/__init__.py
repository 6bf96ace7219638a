"""Where the pipeline's results go: Redis (live state), ClickHouse (the full log), and every
`UpdateSink` (base.py) found in this package's modules."""

from __future__ import annotations

import sys


def configured(settings, clickhouse) -> list:
    """The update sinks the settings turn on, in their order."""
    # Imported here, not with the package: sinks.base imports the pipeline, which the SDK never needs.
    from inferwatch.processors.registry import discover
    from inferwatch.sinks.base import UpdateSink

    sinks = [sink for cls in discover(sys.modules[__name__], UpdateSink)
             if (sink := cls.from_settings(settings, clickhouse)) is not None]
    return sorted(sinks, key=lambda sink: (sink.order, sink.name))
