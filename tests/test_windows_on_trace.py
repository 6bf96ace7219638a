"""The window layer on the real Azure trace, delivered out of order with late stragglers.

Arrivals and token counts are the trace's (about 19k requests over an hour); latency, status and
cost come from the serving model (modelled). Events reach the pipeline as batch messages on two
partitions (by (service, model), as the publisher keys them), shuffled within 10 s, well inside
the 30 s allowed lateness; 60 stragglers from the first 40 minutes are held back and delivered
last, long after their windows closed. Every closed window, panes and 5-minute hopping windows,
of every key set, must equal an exact computation over the on-time events; the stragglers are
counted late (the ClickHouse sink, a consumer of its own, stores every event raw).
"""


import numpy as np
import pytest

from exact import KEYSETS, add_partials, assert_window_matches, exact_hopping, exact_windows, pane_id, series_key
from inferwatch.processors.pipeline import WindowPipeline, RawMessage
from inferwatch.producers.replay import AZURE_TRACE, load_trace
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings

START_MS = 1_700_150_400_000  # an hour boundary: the trace is replayed from here
JITTER_MS = 10_000
STRAGGLERS = 60


@pytest.fixture(scope="module")
def trace_events():
    trace = load_trace(AZURE_TRACE)
    return TrafficModel(seed=7).events(START_MS + trace.offset_ms, input_tokens=trace.input_tokens,
                                       output_tokens=trace.output_tokens)


def test_trace_replay_out_of_order_with_late_events_matches_exact_windows(trace_events):
    rng = np.random.default_rng(7)
    early = np.flatnonzero(np.array([e["ts"] for e in trace_events]) < START_MS + 40 * 60_000)
    held_back = set(rng.choice(early, STRAGGLERS, replace=False).tolist())
    on_time = [e for i, e in enumerate(trace_events) if i not in held_back]
    stragglers = [trace_events[i] for i in sorted(held_back)]
    arrival = np.array([e["ts"] for e in on_time]) + rng.integers(0, JITTER_MS, len(on_time))
    delivered = [on_time[i] for i in np.argsort(arrival, kind="stable")] + stragglers

    codec = EventCodec(local_schema_ids())
    settings = Settings(kafka_partitions=2, window_seconds=60, longer_windows=["5m/1m"], allowed_lateness_seconds=30,
                        partition_idle_seconds=3600)
    pipeline = WindowPipeline(settings, codec)
    partition_of = {}
    closed, decoded, late, finalised = [], 0, 0, {}

    def take(update):
        """The closed panes, and the longer windows merged from the finalised panes, as the worker does."""
        for window in update.closed_windows:
            finalised[pane_id(window)] = window["state"]
        closed.extend(update.closed_windows)
        for due in update.due_windows:
            states = [finalised.get(pane_id(p)) for p in due.pane_ids()]
            closed.append(pipeline.composite.from_pane_states(due, states).snapshot())

    for offset, first in enumerate(range(0, len(delivered), 200)):
        by_partition = {}
        for e in delivered[first:first + 200]:
            partition = partition_of.setdefault((e["service"], e["model"]), len(partition_of) % 2)
            by_partition.setdefault(partition, []).append(e)
        messages = [RawMessage("events", p, offset, b"k", codec.encode_batch(batch),
                               max(e["ts"] for e in batch)) for p, batch in by_partition.items()]
        outcome = pipeline.process(messages, wall_ms=offset)
        decoded += outcome.events
        late += outcome.late
        take(pipeline.live_update(wall_ms=offset))
    # The stream goes quiet: an hour of wall time later, event time has moved past every window.
    take(pipeline.live_update(wall_ms=10 * 3600_000))

    assert late == STRAGGLERS
    assert decoded == len(trace_events)
    for size_s, hop_s, expected in ((60, 0, exact_windows(on_time, 60)), (300, 60, exact_hopping(on_time, 300, 60))):
        windows = [w for w in closed if (w["window_seconds"], w["hop_seconds"]) == (size_s, hop_s)]
        got = add_partials(((series_key(next(k for k in KEYSETS if k.name == w["keyset"]), w), w["window_start_ms"]), w)
                           for w in windows)
        assert got.keys() == expected.keys(), (size_s, hop_s)
        for key, exp in expected.items():
            assert_window_matches(key, got[key], exp)
