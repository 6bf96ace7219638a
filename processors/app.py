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
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import faust
import redis
from faust.web import Request, Response, View

from inferwatch.processors.decoding import decode_in_pool, init_decoder
from inferwatch.processors.kafka_transport import broker_urls
from inferwatch.processors.pipeline import MonitoringPipeline, RawMessage
from inferwatch.processors.windows.feedback import KEYSET as FEEDBACK_KEYSET
from inferwatch.schemas.registry import schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings
from inferwatch.sinks.clickhouse.clickhouse_thread import ClickHouseThread
from inferwatch.sinks.clickhouse.kafka_sink import ClickHouseEventSink
from inferwatch.sinks.clickhouse.rows import alert_row, feedback_rollup_row, rollup_row
from inferwatch.sinks.redis.live_state import LiveStateWriter

log = logging.getLogger(__name__)


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
    )
    events_topic = app.topic(settings.events_topic, key_serializer="raw", value_serializer="raw")
    feedback_topic = app.topic(settings.feedback_topic, key_serializer="raw", value_serializer="raw")
    dlq_topic = app.topic(settings.dlq_topic, key_serializer="raw", value_serializer="raw")

    codec = EventCodec(schema_ids(settings.schema_registry_url))
    pipeline = MonitoringPipeline(settings, codec)
    # Avro decoding, the per-event cost, runs in these processes (decoding.py); none: in this one.
    decode_pool = ProcessPoolExecutor(
        settings.decode_processes, mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded process
        initializer=init_decoder, initargs=(codec.ids, settings.window_keys),
    ) if settings.decode_processes else None
    # Takes being decoded, applied in the order they were read; bounded, so reading waits for decoding.
    decoding: asyncio.Queue = asyncio.Queue(maxsize=2 * settings.decode_processes or 1)
    clickhouse = ClickHouseThread(settings)
    sink = clickhouse.sink
    event_sink = ClickHouseEventSink(settings, clickhouse)
    longest_window_s = max([s.size_seconds for s in pipeline.composite.specs], default=0)
    live_state = LiveStateWriter(settings.resolved_redis_url, settings.redis_window_ttl_seconds,
                                 state_ttl_seconds=settings.redis_window_ttl_seconds + longest_window_s)

    @app.task
    async def start_event_sink():
        event_sink.start()

    @app.on_before_shutdown.connect
    async def stop_event_sink(app_, **kwargs):
        event_sink.stop()
        clickhouse.close()
        if decode_pool is not None:
            decode_pool.shutdown(wait=False, cancel_futures=True)

    async def batches(stream):
        """The stream's messages, a take at a time. Each carries (stream, event) to ack through:
        offsets are committed only once every window a message fed is closed and written (see
        TumblingWindows), so a restart or a rebalance re-reads exactly what no written window holds."""
        async for kafka_events in stream.noack_take(settings.take_max_messages, within=settings.take_within_seconds):
            yield [RawMessage(e.message.topic, e.message.partition, e.message.offset, e.message.key,
                              e.message.value, ack_token=(stream, e))
                   for e in kafka_events]

    async def send_dead_letters(dead_letters):
        for dead in dead_letters:
            await dlq_topic.send(
                key=dead.message.key,
                value=dead.message.value or b"",
                headers=[
                    ("inferwatch.reason", dead.reason.encode()),
                    ("inferwatch.source", f"{dead.message.topic}/{dead.message.partition}/{dead.message.offset}".encode()),
                ],
            )
        if dead_letters:
            now_ms = int(time.time() * 1000)
            await clickhouse.call(sink.insert_dead_letters, [d.as_row(now_ms) for d in dead_letters])

    @app.agent(events_topic)
    async def monitor(stream):
        async for messages in batches(stream):
            if decode_pool is None:
                await send_dead_letters(pipeline.process(messages).dead_letters)
                continue
            items = [(m.partition, m.value) for m in messages]
            await decoding.put((messages, asyncio.get_running_loop().run_in_executor(decode_pool, decode_in_pool, items)))

    @app.task
    async def apply_decoded():
        while decode_pool is not None:
            messages, decoded = await decoding.get()
            try:
                try:
                    outcome = pipeline.apply(messages, await decoded)
                except BrokenProcessPool:  # a decoder process died: this take is decoded here instead
                    log.exception("decode pool broken; decoding in the worker process")
                    outcome = pipeline.process(messages)
                await send_dead_letters(outcome.dead_letters)
            finally:
                decoding.task_done()

    @app.agent(feedback_topic)
    async def monitor_feedback(stream):
        async for messages in batches(stream):
            await send_dead_letters(pipeline.process_feedback(messages))

    # Updates not yet written (Redis or ClickHouse failed): retried, in order, on the next tick.
    unwritten: list = []

    @app.timer(settings.live_update_seconds)
    async def live_update():
        unwritten.append(pipeline.live_update())
        while unwritten:
            try:
                await write_update(unwritten[0])
            except Exception:  # keep the worker and its windows; the next tick retries
                log.exception("live update not written (%d pending); retrying", len(unwritten))
                return
            unwritten.pop(0)

    async def write_update(update):
        # Each step runs once even when a later one fails and the update is retried.
        if "redis" not in update.written:
            panes = live_state.claim_closed(update.closed_windows)
            live_state.write(update.open_windows, panes, update.alerts, update.counters, update.late_by_series)
            # Longer windows: merged from the finalised panes' states, this update's included,
            # whichever worker finalised them (one MGET for all).
            pane_ids = [due.pane_ids() for due in update.due_windows]
            states = iter(live_state.read_states([p for ids in pane_ids for p in ids]))
            merged = [pipeline.composite.from_pane_states(due, [next(states) for _ in ids])
                      for due, ids in zip(update.due_windows, pane_ids)]
            composites = live_state.claim_closed([w.snapshot() for w in merged if w is not None])
            live_state.write([], composites, [], {}, {})
            update.closed_windows = panes + composites
            update.written.add("redis")
        if "clickhouse" not in update.written:
            request_windows = [w for w in update.closed_windows if w["keyset"] != FEEDBACK_KEYSET]
            feedback_windows = [w for w in update.closed_windows if w["keyset"] == FEEDBACK_KEYSET]
            if request_windows:
                await clickhouse.call(sink.insert_rollups, [rollup_row(w) for w in request_windows])
            if feedback_windows:
                await clickhouse.call(sink.insert_feedback_rollups, [feedback_rollup_row(w) for w in feedback_windows])
            if update.alerts:
                await clickhouse.call(sink.insert_alerts, [alert_row(a) for a in update.alerts])
            update.written.add("clickhouse")
        for stream, event in update.ackable:
            await stream.ack(event)
        if update.ackable:
            # Commit now rather than on Faust's timer: a rebalance in between would hand the new
            # owner offsets whose windows were already written, and they would be written twice.
            await app.commit(None)

    handoff_name = f"{settings.app_id}:{settings.events_topic}"

    @app.on_partitions_revoked.connect
    async def forget_revoked(app_, revoked, **kwargs):
        await decoding.join()  # takes already read are applied before their partitions are dropped
        event_partitions = {tp.partition for tp in revoked if tp.topic == settings.events_topic}
        try:
            live_state.write_handoffs(handoff_name, pipeline.handoff(event_partitions))
        except redis.RedisError:  # the rebalance goes on; as after a crash, the open longer windows are lost
            log.exception("handoff of partitions %s not written", sorted(event_partitions))
        pipeline.drop_partitions(event_partitions, {tp.partition for tp in revoked if tp.topic == settings.feedback_topic})

    @app.on_partitions_assigned.connect
    async def resume_assigned(app_, assigned, **kwargs):
        # Every member revokes before any is assigned, so the previous owner's handoff is there
        # (a worker that crashed left none: its open longer windows are not finalised).
        for partition in sorted(tp.partition for tp in assigned if tp.topic == settings.events_topic):
            try:
                handoff = live_state.read_handoff(handoff_name, partition)
                if handoff is not None:
                    pipeline.resume(partition, handoff,
                                    live_state.read_states(pipeline.composite.handoff_pane_ids(handoff)))
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
