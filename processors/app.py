"""The Faust app: agents over the events and feedback topics, one live-update timer, the /sql page.

The worker owns the ClickHouse connection (with chdb, the database path can be open in one
process only); analysts' `inferwatch sql` reaches it through the /sql page while it runs.
Every ClickHouse call runs on one dedicated thread (ClickHouseThread) so the event loop keeps
consuming. Raw events reach ClickHouse through the ClickHouse sink, a Kafka consumer of its own
running in this process (sinks/clickhouse/kafka_sink.py): windows and alerts never wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
from faust.web import Request, Response, View

from inferwatch.processors.kafka_transport import broker_urls
from inferwatch.processors.pipeline import RawMessage
from inferwatch.processors.stream_processor import StreamProcessor
from inferwatch.schemas.registry import schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings
from inferwatch.sinks.clickhouse.clickhouse_thread import ClickHouseThread
from inferwatch.sinks.clickhouse.kafka_sink import ClickHouseEventSink
from inferwatch.sinks.redis.live_state import LiveStateWriter

log = logging.getLogger(__name__)


def _timestamp_ms(message) -> int:
    """A Faust message's Kafka timestamp (s, from ms) back in ms; now if the broker gave none."""
    return int(time.time() * 1000) if message.timestamp is None else round(message.timestamp * 1000)


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.resolved_kafka_bootstrap, settings.worker_fetch_max_wait_ms),
        datadir=str(settings.state_dir / "faust"),
        web_bind=settings.worker_web_host,
        web_host=settings.worker_web_host,
        web_port=settings.worker_web_port,
        topic_partitions=settings.kafka_partitions,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.worker_session_timeout_seconds,
        # Do not wait for the stream buffer to drain before committing: the agent acks per take.
        stream_wait_empty=False,
        # Faust's 1 MB default would make dead-lettering a larger (valid-sized) message raise.
        producer_max_request_size=settings.kafka_message_max_bytes,
    )
    events_topic = app.topic(settings.events_topic, key_serializer="raw", value_serializer="raw")
    feedback_topic = app.topic(settings.feedback_topic, key_serializer="raw", value_serializer="raw")
    dlq_topic = app.topic(settings.dlq_topic, key_serializer="raw", value_serializer="raw")
    drift_topic = app.topic(settings.drift_topic, key_serializer="raw", value_serializer="raw")

    clickhouse = ClickHouseThread(settings)
    event_sink = ClickHouseEventSink(settings, clickhouse)
    longest_window_s = max([s.size_seconds for s in settings.longer_window_specs], default=0)
    live_state = LiveStateWriter(settings.resolved_redis_url, settings.redis_window_ttl_seconds,
                                 state_ttl_seconds=settings.redis_window_ttl_seconds + longest_window_s,
                                 # a worker silent that long has lost its partitions anyway
                                 heartbeat_seconds=settings.worker_session_timeout_seconds)

    async def ack(tokens: list) -> None:
        for stream, event in tokens:
            await stream.ack(event)
        if tokens:
            # Commit now rather than on Faust's timer: a rebalance in between would hand the new
            # owner offsets whose windows were already written, and they would be written twice.
            await app.commit(None)

    async def send_dead_letter(key: bytes | None, value: bytes, headers: list) -> None:
        await dlq_topic.send(key=key, value=value, headers=headers)

    async def send_drift(key: bytes, value: bytes) -> None:
        await drift_topic.send(key=key, value=value)

    processor = StreamProcessor(settings, EventCodec(schema_ids(settings.schema_registry_url)), live_state,
                                clickhouse, ack, send_dead_letter, send_drift)

    async def takes(stream):
        """The stream's messages, a take at a time. Each carries (stream, event) to ack through:
        offsets are committed only once every window a message fed is closed and written (see
        Panes), so a restart or a rebalance re-reads exactly what no written window holds."""
        async for kafka_events in stream.noack_take(settings.take_max_messages, within=settings.take_within_seconds):
            yield [RawMessage(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                              e.message.value, _timestamp_ms(e.message), ack_token=(stream, e))
                   for e in kafka_events]

    @app.agent(events_topic)
    async def consume_events(stream):
        async for messages in takes(stream):
            await processor.on_events(messages)

    @app.agent(feedback_topic)
    async def consume_feedback(stream):
        async for messages in takes(stream):
            await processor.on_feedback(messages)

    @app.timer(settings.live_update_seconds)
    async def live_update():
        await processor.tick()

    @app.task
    async def start():
        event_sink.start()
        await asyncio.gather(processor.apply_decoded(), processor.write_clickhouse())

    @app.on_before_shutdown.connect
    async def stop(app_, **kwargs):
        event_sink.stop()
        clickhouse.close()
        processor.close()

    @app.on_partitions_revoked.connect
    async def revoked(app_, revoked, **kwargs):
        await processor.on_revoked({(tp.topic, tp.partition) for tp in revoked})

    @app.on_partitions_assigned.connect
    async def assigned(app_, assigned, **kwargs):
        await processor.on_assigned({(tp.topic, tp.partition) for tp in assigned})

    @app.page("/sql")
    class SqlView(View):
        """POST {"sql": "...", "parameters": {...}} -> {"columns": [...], "rows": [[...], ...]}
        or {"error": "..."}."""

        async def post(self, request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError:
                return self.json({"error": "the body must be JSON"}, status=400)
            if not (isinstance(body, dict) and isinstance(body.get("sql"), str)
                    and isinstance(body.get("parameters") or {}, dict)):
                return self.json({"error": 'expected {"sql": "<statement>", "parameters": {...}}'}, status=400)
            try:
                result = await clickhouse.call(clickhouse.tables.query, body["sql"], body.get("parameters") or None)
            except Exception as exc:  # the analyst's SQL error goes back to the analyst
                return self.json({"error": str(exc)}, status=400)
            return self.json({"columns": result.column_names, "rows": [list(r) for r in result.rows]})

    return app
