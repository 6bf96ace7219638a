import errno
import os

import pytest

from inferwatch.producers.spool import Spool, SpooledMessage


def messages(start, n, size=100):
    return [SpooledMessage(f"k{i}".encode(), bytes([i % 256]) * size, events=i + 1) for i in range(start, start + n)]


def test_order_is_kept_across_segments_and_sealing(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000, segment_bytes=1_000)
    spool.append(messages(0, 5))
    segment, first = spool.oldest()
    spool.append(messages(5, 5))  # the oldest segment is sealed: these go to a new one
    assert first == messages(0, 5)
    spool.remove(segment)
    segment, second = spool.oldest()
    assert second == messages(5, 5)
    spool.remove(segment)
    assert spool.is_empty()


def test_replace_keeps_the_undelivered_part_at_the_head(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000, segment_bytes=1_000)
    spool.append(messages(0, 4))
    segment, batch = spool.oldest()
    spool.append(messages(4, 2))
    spool.replace(segment, [batch[1], batch[3]])
    assert spool.oldest()[1] == [batch[1], batch[3]]


def test_size_limit_drops_oldest_segments_and_counts_their_events(tmp_path):
    spool = Spool(tmp_path, max_bytes=2_000, segment_bytes=1_000)
    for start in range(0, 40, 4):
        spool.append(messages(start, 4, size=200))
    assert spool.size_bytes() <= 2_000 + 1_000
    kept = []
    while (oldest := spool.oldest()) is not None:
        kept += oldest[1]
        spool.remove(oldest[0])
    all_events = sum(m.events for m in messages(0, 40))
    assert spool.dropped_events + sum(m.events for m in kept) == all_events
    assert kept == messages(40 - len(kept), len(kept), size=200)  # the newest survive, in order


def test_a_torn_last_record_is_ignored_and_data_survives_reopen(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000, segment_bytes=1_000)
    spool.append(messages(0, 3))
    segment = next(tmp_path.glob("*.spool"))
    segment.write_bytes(segment.read_bytes()[:-10])  # a crash mid-write
    assert Spool(tmp_path, max_bytes=10_000, segment_bytes=1_000).oldest()[1] == messages(0, 2)


def test_a_failed_append_leaves_nothing_behind(tmp_path, monkeypatch):
    spool = Spool(tmp_path, max_bytes=10_000, segment_bytes=1_000)
    spool.append(messages(0, 2))
    real_fsync = os.fsync

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        spool.append(messages(2, 2))  # into the existing segment
    segment, _ = spool.oldest()
    with pytest.raises(OSError):
        spool.append(messages(4, 2))  # into a new segment: the oldest is sealed
    with pytest.raises(OSError):
        spool.replace(segment, messages(0, 1))
    monkeypatch.setattr(os, "fsync", real_fsync)
    spool.append(messages(6, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.spool", "1.spool"]
    assert spool.oldest()[1] == messages(0, 2)
    spool.remove(segment)
    assert spool.oldest()[1] == messages(6, 2)
