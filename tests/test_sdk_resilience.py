"""The SDK's publishing thread survives bad events and a full disk, and counts what it loses.

Without a broker (127.0.0.1:1) librdkafka takes messages and holds them; with a queue of one
message, further batches spill into the on-disk spool. A full disk is a spool whose writes fail
with ENOSPC at fsync, as a full filesystem reports it.
"""

import errno
import logging
import os
import uuid
from functools import partial
from pathlib import Path

import pytest

from inferwatch.producers import Monitor
from inferwatch.producers.spool import Spool
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings
import waiting
from test_sdk_kafka import read_topic


# The SDK's thread acts within milliseconds: poll often, give up sooner than for a worker.
wait_for = partial(waiting.wait_for, timeout_s=20.0, poll_s=0.01)


class Disk:
    """os.fsync that fails with ENOSPC while `full`, and counts what it did."""

    def __init__(self, monkeypatch):
        self.full = False
        self.failed = self.synced = 0
        real_fsync = os.fsync

        def fsync(fd):
            if self.full:
                self.failed += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)
            self.synced += 1

        monkeypatch.setattr(os, "fsync", fsync)


def offline_monitor(tmp_path, **settings):
    settings = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", kafka_client_config={"log_level": "0"},
                        **settings)
    return Monitor("resilience", settings)


def call(monitor, **fields):
    with monitor.track(model="gpt-4o-mini", route="/r") as c:
        c.set_usage(3, 4)
        c.set(**fields)


def spooled_events(directory):
    """The events kept in a spool folder (read after close; it is emptied)."""
    spool, events = Spool(directory, 16 * 1024 * 1024), 0
    while (oldest := spool.oldest()) is not None:
        events += sum(m.events for m in oldest[1])
        spool.remove(oldest[0])
    return events


def warnings(caplog, text):
    return [r for r in caplog.records if r.levelno >= logging.WARNING and text in r.getMessage()]


@pytest.mark.parametrize("flushed_by", ["linger", "full batch"])
def test_an_event_that_does_not_encode_is_dropped_alone(tmp_path, caplog, flushed_by):
    batch = {"producer_batch_events": 3, "producer_linger_ms": 600_000} if flushed_by == "full batch" \
        else {"producer_batch_events": 500, "producer_linger_ms": 20}
    monitor = offline_monitor(tmp_path, **batch)
    try:
        publisher = monitor._publisher
        call(monitor)
        call(monitor, topic=42)  # topic is a string: this event cannot be encoded
        call(monitor)
        wait_for("the two good events sent", lambda: publisher.events.stats.events_sent == 2)
        assert monitor.dropped_events == 1
        assert len(warnings(caplog, "does not encode")) == 1
        for _ in range(3):  # the thread goes on
            call(monitor)
        wait_for("the next batch sent", lambda: publisher.events.stats.events_sent == 5)
        assert publisher._thread.is_alive() and monitor.dropped_events == 1
    finally:
        monitor.close(0)


def test_an_event_over_the_message_limit_is_dropped_alone(tmp_path, caplog):
    monitor = offline_monitor(tmp_path, kafka_message_max_bytes=4096, producer_linger_ms=20)
    try:
        call(monitor)
        call(monitor, topic="x" * 5000)
        call(monitor)
        wait_for("the two good events sent", lambda: monitor._publisher.events.stats.events_sent == 2)
        call(monitor)
        wait_for("the next event sent", lambda: monitor._publisher.events.stats.events_sent == 3)
        assert monitor.dropped_events == 1
        assert len(warnings(caplog, "message limit")) == 1
    finally:
        monitor.close(0)


def test_a_full_disk_drops_counted_events_warns_once_and_spooling_resumes(tmp_path, monkeypatch, caplog):
    disk = Disk(monkeypatch)
    monitor = offline_monitor(tmp_path, producer_max_queued_messages=1, producer_linger_ms=0)
    try:
        publisher = monitor._publisher
        call(monitor)  # takes librdkafka's only queue slot, undelivered for the whole test
        wait_for("the first event sent", lambda: publisher.events.stats.events_sent == 1)
        disk.full = True
        for _ in range(9):
            call(monitor)
        wait_for("9 events dropped", lambda: monitor.dropped_events == 9)
        assert publisher._thread.is_alive()
        assert len(warnings(caplog, "spool")) == 1

        disk.full = False
        for _ in range(10):
            call(monitor)
        wait_for("10 events spooled", lambda: publisher.events.stats.events_spooled == 10)
        assert publisher._thread.is_alive() and monitor.dropped_events == 9
        assert len(warnings(caplog, "spool")) == 1
    finally:
        monitor.close(0)


def three_events_spooled(tmp_path, monkeypatch):
    """An offline monitor whose three events are spooled (each batch once: after that, failed
    re-sends rewrite their segment), and the disk under it."""
    disk = Disk(monkeypatch)
    monitor = offline_monitor(tmp_path, producer_max_queued_messages=1, producer_linger_ms=0,
                              producer_delivery_timeout_ms=1000)
    for _ in range(3):
        call(monitor)
    wait_for("all events spooled", lambda: monitor._publisher.events.stats.events_spooled == 3)
    return disk, monitor, monitor._publisher


def test_a_full_disk_while_rewriting_a_spool_segment_loses_nothing(tmp_path, monkeypatch):
    disk, monitor, publisher = three_events_spooled(tmp_path, monkeypatch)
    disk.full = True
    wait_for("a segment rewrite to fail", lambda: disk.failed > 0)
    synced = disk.synced
    disk.full = False
    wait_for("the next segment rewrite", lambda: disk.synced > synced)
    assert publisher._thread.is_alive() and monitor.dropped_events == 0
    monitor.close(0)
    spool_dir = tmp_path / "spool" / "resilience" / "events"
    assert [p.name for p in spool_dir.iterdir() if p.suffix != ".spool"] == []  # no temporary file left
    assert spooled_events(spool_dir) == 3


def test_an_unexpected_error_is_logged_once_and_the_thread_goes_on(tmp_path, monkeypatch, caplog):
    disk, monitor, publisher = three_events_spooled(tmp_path, monkeypatch)
    failed_reads = []
    real_read_bytes = Path.read_bytes

    def read_bytes(path):
        if path.suffix == ".spool":  # a failing disk: the re-send cannot read its segment
            failed_reads.append(path)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    wait_for("repeated read errors", lambda: len(failed_reads) > 10)
    monkeypatch.setattr(Path, "read_bytes", real_read_bytes)
    synced = disk.synced
    wait_for("the next re-send's segment rewrite", lambda: disk.synced > synced)
    assert publisher._thread.is_alive() and monitor.dropped_events == 0
    assert len([r for r in caplog.records if r.levelno == logging.ERROR and "goes on" in r.getMessage()]) == 1
    monitor.close(0)


@pytest.mark.integration
def test_an_unknown_topic_keeps_events_in_the_spool(stack, tmp_path, caplog):
    # The local broker does not create topics: librdkafka fails the first message, then refuses
    # every further one at produce().
    settings = stack.model_copy(update={
        "events_topic": f"no-such-topic-{uuid.uuid4().hex[:8]}", "producer_linger_ms": 0,
        "producer_delivery_timeout_ms": 1000, "producer_spool_dir": str(tmp_path / "spool"),
        "kafka_client_config": {**stack.kafka_client_config, "topic.metadata.propagation.max.ms": "0"},
    })
    monitor = Monitor("unknown-topic-it", settings)
    publisher = monitor._publisher
    call(monitor)
    wait_for("Kafka to refuse the topic", lambda: warnings(caplog, "Kafka refuses"), timeout_s=60)
    for _ in range(5):
        call(monitor)
    wait_for("all events spooled", lambda: publisher.events.stats.events_spooled == 6)
    assert publisher._thread.is_alive() and monitor.dropped_events == 0
    monitor.close(0)
    assert spooled_events(tmp_path / "spool" / "events") == 6


@pytest.mark.integration
def test_with_a_live_broker_a_full_disk_loses_only_counted_events(stack, tmp_path, monkeypatch):
    # One queued message at a time: bursts spill into the spool, which cannot be written at first.
    disk = Disk(monkeypatch)
    settings = stack.model_copy(update={"producer_max_queued_messages": 1,
                                        "producer_batch_events": 1, "producer_spool_dir": str(tmp_path / "spool")})
    monitor = Monitor("disk-full-it", settings)
    publisher = monitor._publisher
    request_ids = [f"req-{uuid.uuid4()}" for _ in range(600)]
    disk.full = True
    for request_id in request_ids[:300]:
        call(monitor, request_id=request_id)
    assert monitor.flush(30)
    dropped = monitor.dropped_events
    assert dropped > 0 and disk.failed > 0
    disk.full = False
    for request_id in request_ids[300:]:
        call(monitor, request_id=request_id)
    wait_for("the rest delivered", lambda: publisher.events.stats.events_delivered == 600 - dropped, timeout_s=120)
    assert publisher.events.stats.events_spooled > 0 and publisher._thread.is_alive()
    monitor.close()
    assert monitor.dropped_events == dropped and publisher.events.spool.is_empty()
    codec = EventCodec(local_schema_ids())
    events = read_topic(stack, stack.events_topic, 600 - dropped,
                        lambda value: [e for e in codec.decode(value) if e["service"] == "disk-full-it"])
    received = [e["request_id"] for e in events]
    assert len(received) == len(set(received)) == 600 - dropped
    assert set(request_ids[300:]) <= set(received)
