"""Trace replay: real arrival times and token counts reach the topic; bad traces are clear errors."""

import csv

import numpy as np
import pytest

from inferwatch.producers.replay import AZURE_TRACE, load_trace, replay
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from test_sdk_kafka import read_topic



@pytest.fixture(scope="module")
def azure_rows():
    with AZURE_TRACE.open() as f:
        return list(csv.DictReader(f))


def test_azure_trace_loads_as_recorded(azure_rows):
    trace = load_trace(AZURE_TRACE)
    assert len(trace) == len(azure_rows)
    assert trace.offset_ms[0] == 0 and np.all(np.diff(trace.offset_ms) >= 0)
    assert trace.input_tokens.sum() == sum(int(r["ContextTokens"]) for r in azure_rows)
    assert trace.output_tokens.sum() == sum(int(r["GeneratedTokens"]) for r in azure_rows)


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n", "missing columns"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n", "no requests"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,10,x\n", "line 2: bad row"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,-1,5\n", "line 2: bad row"),
])
def test_bad_traces_are_rejected_with_the_line(tmp_path, content, message):
    path = tmp_path / "trace.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_trace(path)


@pytest.mark.integration
def test_replay_publishes_recorded_tokens_with_compressed_arrivals(stack, azure_rows, tmp_path):
    head = tmp_path / "head.csv"
    head.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(
        f"{r['TIMESTAMP']},{r['ContextTokens']},{r['GeneratedTokens']}\n" for r in azure_rows[:300]))
    trace = load_trace(head)
    replay(stack, trace, speed=200, service="replay-svc", model="llama-3.1-8b-chat-ft", seed=1)
    events = [e for e in read_topic(stack, stack.events_topic, 300, EventCodec(local_schema_ids()).decode)
              if e["service"] == "replay-svc"]
    events.sort(key=lambda e: e["ts"])
    assert len(events) == 300
    assert [e["input_tokens"] for e in events] == trace.input_tokens.tolist()
    assert all(e["attributes"]["latency_source"] == "modelled" for e in events)
    # Arrival spacing is the trace's, compressed 200x (ts are whole milliseconds).
    spacing = np.diff([e["ts"] for e in events])
    assert np.allclose(spacing, np.diff(trace.offset_ms) / 200, atol=1.5)
