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
from concurrent.futures.process import BrokenProcessPool

import faust
import redis
from faust.web import Request, Response, View

from inferwatch.processors.committer import UpdateCommitter
from inferwatch.processors.decoding import DecoderPool
from inferwatch.processors.kafka_transport import broker_urls
from inferwatch.processors.pipeline import DeadLetter, MonitoringPipeline, RawMessage, decode_items
from inferwatch.schemas.dead_letter import dead_letter_record
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

    codec = EventCodec(schema_ids(settings.schema_registry_url))
    pipeline = MonitoringPipeline(settings, codec)
    # Avro decoding, the per-event cost, runs in these processes (decoding.py); none: in this one.
    decode_pool = DecoderPool(
        settings.decode_processes, (codec.ids, settings.window_keys, settings.event_limits),
    ) if settings.decode_processes else None
    # Takes being decoded, applied in the order they were read; bounded, so reading waits for decoding.
    decoding: asyncio.Queue = asyncio.Queue(maxsize=2 * settings.decode_processes or 1)
    clickhouse = ClickHouseThread(settings)
    sink = clickhouse.sink
    event_sink = ClickHouseEventSink(settings, clickhouse)
    longest_window_s = max([s.size_seconds for s in pipeline.composite.specs], default=0)
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

    committer = UpdateCommitter(live_state, clickhouse, pipeline.composite, ack, settings.clickhouse_max_pending_rows)

    @app.task
    async def start_event_sink():
        event_sink.start()

    @app.on_before_shutdown.connect
    async def stop_event_sink(app_, **kwargs):
        event_sink.stop()
        clickhouse.close()
        if decode_pool is not None:
            decode_pool.shutdown()

    async def batches(stream):
        """The stream's messages, a take at a time. Each carries (stream, event) to ack through:
        offsets are committed only once every window a message fed is closed and written (see
        TumblingWindows), so a restart or a rebalance re-reads exactly what no written window holds."""
        async for kafka_events in stream.noack_take(settings.take_max_messages, within=settings.take_within_seconds):
            yield [RawMessage(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                              e.message.value, _timestamp_ms(e.message), ack_token=(stream, e))
                   for e in kafka_events]

    async def send_dead_letters(dead_letters: list[DeadLetter]):
        rows = []
        for dead in dead_letters:
            source = (dead.message.topic, dead.message.partition, dead.message.offset)
            value, headers, reason = dead_letter_record(dead.value, dead.reason, source,
                                                        settings.kafka_message_max_bytes, dead.event_index)
            await dlq_topic.send(key=dead.message.key, value=value, headers=headers)
            rows.append(DeadLetter(dead.message, reason, dead.event_index, value).as_row(int(time.time() * 1000)))
        committer.queue_dead_letters(rows)

    @app.agent(events_topic)
    async def monitor(stream):
        async for messages in batches(stream):
            if decode_pool is None:
                await send_dead_letters(pipeline.process(messages).dead_letters)
                continue
            items = decode_items(messages)
            await decoding.put((messages, items, decode_pool.submit(items)))

    @app.task
    async def apply_decoded():
        while decode_pool is not None:
            messages, items, started = await decoding.get()
            try:
                try:
                    outcome = pipeline.apply(messages, await decode_pool.result(items, started))
                except BrokenProcessPool:  # a fresh decoder died on this take too: it is the poison
                    log.error("decoder processes died twice on a take of %d messages: dead-lettered", len(messages))
                    outcome = pipeline.refuse(messages, "a decoder process died decoding this message's take, twice")
                await send_dead_letters(outcome.dead_letters)
            finally:
                decoding.task_done()

    @app.agent(feedback_topic)
    async def monitor_feedback(stream):
        async for messages in batches(stream):
            await send_dead_letters(pipeline.process_feedback(messages))

    @app.timer(settings.live_update_seconds)
    async def live_update():
        await committer.write(pipeline.live_update())

    @app.task
    async def write_clickhouse():
        await committer.run_clickhouse()

    handoff_name = f"{settings.app_id}:{settings.events_topic}"

    @app.on_partitions_revoked.connect
    async def forget_revoked(app_, revoked, **kwargs):
        await decoding.join()  # takes already read are applied before their partitions are dropped
        event_partitions = {tp.partition for tp in revoked if tp.topic == settings.events_topic}
        try:
            await asyncio.to_thread(live_state.write_handoffs, handoff_name, pipeline.handoff(event_partitions))
        except redis.RedisError:  # the rebalance goes on; as after a crash, the open longer windows are lost
            log.exception("handoff of partitions %s not written", sorted(event_partitions))
        pipeline.drop_partitions(event_partitions, {tp.partition for tp in revoked if tp.topic == settings.feedback_topic})

    @app.on_partitions_assigned.connect
    async def resume_assigned(app_, assigned, **kwargs):
        # Every member revokes before any is assigned, so the previous owner's handoff is there
        # (a worker that crashed left none: its open longer windows are not finalised).
        for partition in sorted(tp.partition for tp in assigned if tp.topic == settings.events_topic):
            try:
                handoff = await asyncio.to_thread(live_state.read_handoff, handoff_name, partition)
                if handoff is not None:
                    states = await asyncio.to_thread(live_state.read_states, pipeline.composite.handoff_pane_ids(handoff))
                    pipeline.resume(partition, handoff, states)
            except redis.RedisError:  # the partition is read all the same, without the handoff
                log.exception("handoff of partition %d not read", partition)

    @app.page("/sql")
    class SqlView(View):
        """POST {"sql": "...", "parameters": {...}} -> {"columns": [...], "rows": [[...], ...]}
        or {"error": "..."}."""

        async def post(self, request: Request) -> Response:
            body = await request.json()
            try:
                result = await clickhouse.call(sink.query, body["sql"], body.get("parameters") or None)
            except Exception as exc:  # the analyst's SQL error goes back to the analyst
                return self.json({"error": str(exc)}, status=400)
            return self.json({"columns": result.column_names, "rows": [list(r) for r in result.rows]})

    return app
