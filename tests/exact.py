"""Exact per-window metrics computed straight from events: what the pipeline must reproduce."""

import numpy as np

WINDOW_S = 60


def exact_windows(events, window_s=WINDOW_S):
    """Per (series, window start) metrics computed directly from the events."""
    out = {}
    for e in events:
        start = e["ts"] - e["ts"] % (window_s * 1000)
        out.setdefault(((e["service"], e["model"], e["model_version"]), start), []).append(e)
    return {key: exact_metrics(group) for key, group in out.items()}


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
