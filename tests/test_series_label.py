"""Series labels (and so Redis window keys) are distinct for distinct field values."""

from inferwatch.processors.windows.keys import SeriesKey
from inferwatch.sinks.redis.live_state import window_key

FIELDS = ("service", "model")


def key(*values):
    return SeriesKey("m", FIELDS[:len(values)], values)


def window(series):
    return {"keyset": series.keyset, "series": series.label, "window_seconds": 60, "hop_seconds": 0,
            "source_partition": -1, "window_start_ms": 1763812920000}


def test_separators_inside_values_do_not_merge_series():
    pairs = [
        (key("a|b", "c"), key("a", "b|c")),
        (key("a:b", "c"), key("a", "b:c")),
        (key("a%7Cb", "c"), key("a|b", "c")),  # an escape sequence as a literal value
    ]
    for one, other in pairs:
        assert one.label != other.label
        assert window_key(window(one)) != window_key(window(other))


def test_series_label_has_no_bare_key_separator():
    assert ":" not in key("a:b", "c:d").label
    assert key("a|b", "c").label.count("|") == 1


def test_ordinary_labels_are_unchanged():
    series = SeriesKey("model", ("service", "model", "model_version"), ("chat-api", "llama-3.1-8b", "v7"))
    assert series.label == "chat-api|llama-3.1-8b|v7"
    assert window_key(window(series)) == "iw:window:model:60:chat-api|llama-3.1-8b|v7:1763812920000"
    assert key("tenant_42 acme/eu", "gpt-4o@2024-08-06").label == "tenant_42 acme/eu|gpt-4o@2024-08-06"
    assert key("modèle", "ü").label == "modèle|ü"
