"""Exact per-window metrics computed straight from events and feedback: what the pipeline must
reproduce; and the feedback the tests send."""

import uuid

import numpy as np
import pytest

from inferwatch.processors.windows.keys import SeriesKey, parse_keysets
from inferwatch.settings import Settings

WINDOW_S = 60
# The shipped default key sets: (service, model, model_version), (tenant_id, model), (route).
KEYSETS = parse_keysets(Settings.model_fields["window_keys"].get_default(call_default_factory=True))


def series_key(keyset, event_or_window):
    """The series of an event (or of a window read back from Redis) in one key set."""
    return SeriesKey(keyset.name, keyset.fields, tuple(event_or_window[f] for f in keyset.fields))


def window_series(window):
    """The SeriesKey of a window read back from Redis or window_rollups (keyset + key columns)."""
    keyset = next(k for k in KEYSETS if k.name == window["keyset"])
    return series_key(keyset, window)


def pane_id(window):
    """A pane's identity as the worker keys its finalised state (in Redis; a dict in unit tests)."""
    return window["keyset"], window["series"], window["window_start_ms"], window["source_partition"]


def from_redis(window):
    """A window hash read from Redis with its per-error-type counts gathered as in snapshots."""
    error_types = {k[len("error_type:"):]: int(v) for k, v in window.items() if k.startswith("error_type:")}
    return {**window, "error_types": error_types}


def all_counted(windows, n_events):
    """Whether these windows hold n_events in each key set: every event in one window (or
    partial) of each key set, none missing."""
    return all(sum(int(w["events"]) for w in windows if w["keyset"] == k.name) == n_events for k in KEYSETS)


def exact_windows(events, window_s=WINDOW_S, keysets=KEYSETS):
    """Per (series, window start) metrics computed directly from the events, for every key set."""
    out = {}
    for e in events:
        start = e["ts"] - e["ts"] % (window_s * 1000)
        for keyset in keysets:
            out.setdefault((series_key(keyset, e), start), []).append(e)
    return {key: exact_metrics(group) for key, group in out.items()}


def exact_hopping(events, size_s, hop_s, keysets=KEYSETS):
    """Metrics of every window of size_s starting every hop_s that holds events, per series."""
    groups = {}
    for e in events:
        last = e["ts"] - e["ts"] % (hop_s * 1000)
        for start in range(last, e["ts"] - size_s * 1000, -hop_s * 1000):
            for keyset in keysets:
                groups.setdefault((series_key(keyset, e), start), []).append(e)
    return {key: exact_metrics(group) for key, group in groups.items()}


def exact_metrics(group):
    """The window metrics of a list of events, computed directly."""
    latency = np.array([e["latency_ms"] for e in group])
    ttft = np.array([e["ttft_ms"] for e in group if e["ttft_ms"] is not None])
    error_types = {}
    for e in group:
        if e["error_type"] is not None:
            error_types[e["error_type"]] = error_types.get(e["error_type"], 0) + 1
    return {
        "events": len(group),
        "errors": sum(e["status"] == "ERROR" for e in group),
        "timeouts": sum(e["status"] == "TIMEOUT" for e in group),
        "filtered": sum(e["status"] == "FILTERED" for e in group),
        "input_tokens": sum(e["input_tokens"] for e in group),
        "output_tokens": sum(e["output_tokens"] for e in group),
        "cost_usd": sum(e["cost_usd"] or 0.0 for e in group),
        "p50": np.quantile(latency, 0.5, method="lower"),
        "p90": np.quantile(latency, 0.9, method="lower"),
        "ttft_p95": np.quantile(ttft, 0.95, method="lower") if ttft.size else None,
        "error_types": error_types,
        "p99": np.quantile(latency, 0.99, method="lower"),
        "max": latency.max(),
    }


ADDITIVE = ("events", "errors", "timeouts", "filtered", "input_tokens", "output_tokens", "cost_usd")
PERCENTILES = {"latency_p50_ms": "p50", "latency_p90_ms": "p90", "latency_p99_ms": "p99", "ttft_p95_ms": "ttft_p95"}


def add_partials(windows):
    """(key, window) pairs -> {key: window}, the per-partition parts of a series that spans
    partitions summed (keys.py); each window a dict with ADDITIVE fields and an `error_types` dict."""
    out = {}
    for key, window in windows:
        if key not in out:
            out[key] = {**window, "parts": 1}
            continue
        total = out[key]
        total["parts"] += 1
        for name in ADDITIVE:
            total[name] = float(total[name]) + float(window[name])
        total["error_types"] = {name: total["error_types"].get(name, 0) + window["error_types"].get(name, 0)
                                for name in total["error_types"].keys() | window["error_types"].keys()}
    return out


def assert_window_matches(key, got, exp):
    """A window (or the sum of its partials) against the exact metrics: counts and sums equal,
    percentiles within the sketch's 1% bound for a whole series, absent for a partitioned one."""
    series = key[0]
    for name in ADDITIVE[:-1]:
        assert int(got[name]) == exp[name], (key, name)
    assert float(got["cost_usd"]) == pytest.approx(exp["cost_usd"], rel=1e-9), key
    assert {k: int(v) for k, v in got["error_types"].items()} == exp["error_types"], key
    spans = next(k for k in KEYSETS if k.name == series.keyset).spans_partitions
    for name, exact_name in PERCENTILES.items():
        if spans or exp[exact_name] is None:
            assert got.get(name) is None, (key, name)
        else:
            assert float(got[name]) == pytest.approx(exp[exact_name], rel=0.01), (key, name)


def exact_feedback_windows(records, window_s=WINDOW_S):
    """Per (service, model or "", window start) feedback counts computed directly."""
    out = {}
    for r in records:
        key = (r["service"], r["model"] or "", r["ts"] - r["ts"] % (window_s * 1000))
        w = out.setdefault(key, {"feedback": 0, "thumbs_up": 0, "thumbs_down": 0, "ratings": [], "hallucinations": 0,
                                 "judged": 0, "faithfulness": []})
        w["feedback"] += 1
        w["thumbs_up"] += r["thumbs"] == 1
        w["thumbs_down"] += r["thumbs"] == -1
        if r["rating"] is not None:
            w["ratings"].append(r["rating"])
        if r["hallucination"] is not None:
            w["judged"] += 1
            w["hallucinations"] += r["hallucination"]
        w["faithfulness"] += r["eval_scores"].values()
    return out


FEEDBACK_SERIES = [("chat-api", "llama-3.1-8b-chat-ft"), ("support-bot", "mistral-7b-support-ft"), ("chat-api", None)]


def make_feedback(n, start_ms, span_ms, seed=3):
    """n feedback records with random thumbs, ratings, judgements and scores, ts in [start, start + span)."""
    rng = np.random.default_rng(seed)
    records = []
    for ts in np.sort(start_ms + rng.integers(0, span_ms, n)).tolist():
        service, model = FEEDBACK_SERIES[rng.integers(len(FEEDBACK_SERIES))]
        records.append({
            "feedback_id": str(uuid.uuid4()), "ts": ts, "request_id": uuid.uuid4().hex, "service": service,
            "model": model, "source": "USER",
            "thumbs": [None, 1, -1][rng.integers(3)],
            "rating": float(rng.integers(1, 6)) if rng.random() < 0.3 else None,
            "eval_scores": {"faithfulness": float(rng.random())} if rng.random() < 0.2 else {},
            "hallucination": [None, True, False][rng.integers(3)],
            "judge": None, "comment": None, "user_id": None, "attributes": {},
        })
    return records
