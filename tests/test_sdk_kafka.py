"""The SDK against the real broker: events arrive decodable, and survive a broker outage once each."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from inferwatch.deploy import local_stack
from inferwatch.processes import stop_process
from inferwatch.producers import Monitor
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec, WireFormatError
from inferwatch.settings import Settings
from waiting import wait_for

pytestmark = pytest.mark.integration
DEADLINE_S = 120


def read_topic(settings, topic, expected, decode):
    """Every record on `topic` from the beginning, until `expected` arrived or the deadline.

    Messages that do not decode are skipped: other tests put malformed ones on the shared topic.
    """
    consumer = Consumer(settings.kafka_config(**{"group.id": f"t-{uuid.uuid4().hex[:8]}",
                                                 "enable.auto.commit": False}))
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    records, deadline = [], time.monotonic() + DEADLINE_S

    def take(messages):
        for message in messages:
            if message.error() is None:
                try:
                    records.extend(decode(message.value()))
                except WireFormatError:
                    pass

    while len(records) < expected and time.monotonic() < deadline:
        take(consumer.consume(500, timeout=0.5))
    take(consumer.consume(500, timeout=2))  # anything beyond `expected` would be a duplicate
    consumer.close()
    return records


def test_decorated_calls_and_feedback_reach_their_topics(stack):
    monitor = Monitor("sdk-it", stack)
    codec = EventCodec(local_schema_ids())

    @monitor.instrument(model="gpt-4o-mini", route="/v1/chat")
    def answer(prompt):
        return {"usage": {"prompt_tokens": 5, "completion_tokens": 7}, "choices": [{"message": {"content": "ok"}}]}

    request_ids = [f"req-{uuid.uuid4()}" for _ in range(50)]
    for request_id in request_ids:
        with monitor.track(model="gpt-4o-mini", route="/v1/chat", request_id=request_id) as call:
            call.record_response(answer("hello"))
    monitor.record_feedback(request_ids[0], thumbs=-1, eval_scores={"faithfulness": 0.25})
    monitor.close()
    events = [e for e in read_topic(stack, stack.events_topic, 100, codec.decode) if e["service"] == "sdk-it"]
    assert len(events) == 100
    assert {e["request_id"] for e in events if e["route"] == "/v1/chat" and e["request_id"]} == set(request_ids)
    assert all(e["input_tokens"] == 5 and e["output_tokens"] == 7 and e["cost_usd"] > 0 for e in events)
    feedback = read_topic(stack, stack.feedback_topic, 1, lambda v: [codec.decode_feedback(v)])
    assert [(f["request_id"], f["thumbs"], f["eval_scores"]) for f in feedback if f["service"] == "sdk-it"] == [
        (request_ids[0], -1, {"faithfulness": 0.25})
    ]


def test_broker_outage_loses_and_duplicates_nothing(tmp_path):
    # Its own stack: this test stops the broker. A tiny librdkafka queue makes the outage spill
    # into the on-disk spool, so both recovery paths are exercised.
    settings = Settings(state_dir=tmp_path / "outage", producer_max_queued_messages=4,
                        producer_batch_events=50, producer_linger_ms=10)
    local_stack.up(settings, progress=lambda _: None)
    try:
        monitor = Monitor("outage-svc", settings)
        request_ids = []

        def calls(n):
            for _ in range(n):
                request_ids.append(f"r{len(request_ids)}")
                with monitor.track(model="gpt-4o-mini", request_id=request_ids[-1]) as call:
                    call.set_usage(10, 10)
            assert monitor.flush(30)

        calls(1000)
        stop_process(settings, "kafka")
        calls(1500)  # the broker is down: these queue in librdkafka, then spill to the spool
        assert monitor._publisher.events.stats.events_spooled > 0
        local_stack.up(settings, progress=lambda _: None)
        calls(1000)
        wait_for(f"all {len(request_ids)} events delivered",
                 lambda: monitor._publisher.events.stats.events_delivered >= len(request_ids), DEADLINE_S)
        monitor.close()
        publisher = monitor._publisher.events
        assert publisher.spool.is_empty(), (publisher.stats, publisher._draining and len(publisher._draining[1]),
                                            publisher._drain_outstanding, publisher._drain_failed,
                                            [p.name for p in publisher.spool.directory.iterdir()])
        assert monitor.dropped_events == 0
        codec = EventCodec(local_schema_ids())
        events = read_topic(settings, settings.events_topic, len(request_ids), codec.decode)
        assert len(events) == len(request_ids)
        assert sorted(e["request_id"] for e in events) == sorted(request_ids)
        assert len({e["event_id"] for e in events}) == len(events)
    finally:
        local_stack.down(settings, progress=lambda _: None)
