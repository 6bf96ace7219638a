"""Dead-letter records (schemas/dead_letter.py): what a consumer of the dead-letter topic reads."""

from inferwatch.schemas.dead_letter import OVERHEAD_BYTES, dead_letter_record

LIMIT = 1_000_000


def test_a_refused_event_carries_its_reason_source_and_place_in_its_message():
    value, headers, reason = dead_letter_record(b"event", "latency_ms must be ...", ("events", 3, 42), LIMIT, 7)
    assert (value, reason) == (b"event", "latency_ms must be ...")
    assert dict(headers) == {"inferwatch.reason": b"latency_ms must be ...", "inferwatch.source": b"events/3/42",
                             "inferwatch.event_index": b"7"}


def test_a_message_too_large_to_copy_is_recorded_by_reference():
    too_large = bytes(LIMIT - OVERHEAD_BYTES + 1)
    value, headers, reason = dead_letter_record(too_large, "unknown schema id 9", ("events", 0, 5), LIMIT)
    assert value == b""
    assert reason == f"unknown schema id 9 ({len(too_large)} bytes, not copied)"
    assert dict(headers) == {"inferwatch.reason": reason.encode(), "inferwatch.source": b"events/0/5",
                             "inferwatch.size": str(len(too_large)).encode()}
    fits = bytes(LIMIT - OVERHEAD_BYTES)
    assert dead_letter_record(fits, "r", ("events", 0, 6), LIMIT)[0] == fits
