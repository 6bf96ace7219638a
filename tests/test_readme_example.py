"""The README's "Instrument your service" block runs as written and its events reach Kafka."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from test_sdk_kafka import read_topic

README = Path(__file__).resolve().parents[1] / "README.md"
pytestmark = pytest.mark.integration


def test_instrument_example_runs_and_publishes(stack, tmp_path):
    section = README.read_text().split("## Instrument your service", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "INFERWATCH_STATE_DIR": str(stack.state_dir)}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    codec = EventCodec(local_schema_ids())
    events = [e for e in read_topic(stack, stack.events_topic, 1, codec.decode)
              if e["service"] == "chat-api" and e["route"] == "/v1/chat" and e["tenant_id"] == "acme"]
    assert len(events) == 1
    assert (events[0]["input_tokens"], events[0]["output_tokens"], events[0]["finish_reason"]) == (9, 3, "stop")
    feedback = read_topic(stack, stack.feedback_topic, 1, lambda v: [codec.decode_feedback(v)])
    assert any(f["request_id"] == "req-1" and f["thumbs"] == 1 for f in feedback)
