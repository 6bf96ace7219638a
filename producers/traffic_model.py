"""Synthetic inference traffic: a documented *model* of an LLM serving fleet, not recorded data.

What is modelled, per event:
- series: a fixed catalogue of services, routes and models (FLEET), picked with fixed weights;
- tokens: input ~ lognormal(median 600, sigma 0.9), output ~ lognormal(median 120, sigma 0.6),
  clipped to [1, 32k] / [1, 4k] (the Azure conversation trace has medians of the same order);
- latency: overhead + input / prefill rate + output / decode rate of the model, times a lognormal
  noise (sigma 0.25); TTFT = overhead + input / prefill rate, same noise; a latency regression
  multiplies both by a factor for one model from a given point on;
- status: TIMEOUT when latency exceeds 30 s, else ERROR with p=0.5%, FILTERED with p=0.3%;
- cost: input and output tokens at the model's list price per 1M tokens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModelProfile:
    service: str
    route: str
    model: str
    model_version: str
    weight: float  # share of traffic
    overhead_ms: float
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    usd_per_1m_input: float
    usd_per_1m_output: float


FLEET = (
    ModelProfile("chat-api", "/v1/chat/completions", "llama-3.1-8b-chat-ft", "v7", 0.45, 40, 9000, 150, 0.10, 0.10),
    ModelProfile("support-bot", "/v1/answer", "mistral-7b-support-ft", "v3", 0.30, 60, 7000, 110, 0.15, 0.15),
    ModelProfile("summarizer", "/v1/summarize", "qwen2.5-14b-summarize", "v2", 0.25, 80, 5000, 90, 0.30, 0.30),
)
TENANTS = ("acme", "globex", "initech", "umbrella")
TIMEOUT_MS = 30_000.0
ERROR_RATE = 0.005
FILTERED_RATE = 0.003
ERROR_TYPES = ("UpstreamError", "CUDAOutOfMemory", "RateLimitError")


@dataclass(frozen=True)
class LatencyRegression:
    model: str
    factor: float
    from_ts_ms: int  # events at or after this event time are slowed down


class TrafficModel:
    def __init__(self, seed: int | None = None, fleet: tuple[ModelProfile, ...] = FLEET):
        self.rng = np.random.default_rng(seed)
        self.fleet = fleet
        self._weights = np.array([p.weight for p in fleet]) / sum(p.weight for p in fleet)

    def events(self, ts_ms: np.ndarray, regression: LatencyRegression | None = None) -> list[dict]:
        """One event per timestamp in `ts_ms` (epoch ms), as dicts ready for the Avro codec."""
        n = int(ts_ms.size)
        rng = self.rng
        profile_index = rng.choice(len(self.fleet), size=n, p=self._weights)
        input_tokens = np.clip(rng.lognormal(np.log(600), 0.9, n), 1, 32_000).astype(np.int64)
        output_tokens = np.clip(rng.lognormal(np.log(120), 0.6, n), 1, 4_000).astype(np.int64)
        overhead, prefill, decode, price_in, price_out = (
            np.array([getattr(p, name) for p in self.fleet])[profile_index]
            for name in ("overhead_ms", "prefill_tokens_per_s", "decode_tokens_per_s",
                         "usd_per_1m_input", "usd_per_1m_output")
        )
        noise = rng.lognormal(0.0, 0.25, n)
        ttft_ms = (overhead + input_tokens / prefill * 1000) * noise
        latency_ms = ttft_ms + output_tokens / decode * 1000 * noise
        if regression is not None:
            slowed = (np.array([p.model for p in self.fleet])[profile_index] == regression.model) & (
                ts_ms >= regression.from_ts_ms
            )
            ttft_ms = np.where(slowed, ttft_ms * regression.factor, ttft_ms)
            latency_ms = np.where(slowed, latency_ms * regression.factor, latency_ms)
        roll = rng.random(n)
        status = np.where(
            latency_ms > TIMEOUT_MS, "TIMEOUT",
            np.where(roll < ERROR_RATE, "ERROR", np.where(roll < ERROR_RATE + FILTERED_RATE, "FILTERED", "OK")),
        )
        latency_ms = np.minimum(latency_ms, TIMEOUT_MS)
        ok = status == "OK"
        output_tokens = np.where(ok, output_tokens, 0)  # a failed request generates nothing billable
        cost = (input_tokens * price_in + output_tokens * price_out) / 1e6
        error_type = rng.choice(ERROR_TYPES, size=n)
        tenants = rng.choice(TENANTS, size=n)
        events = []
        for i in range(n):
            p = self.fleet[profile_index[i]]
            events.append({
                "event_id": str(uuid.UUID(bytes=rng.bytes(16), version=4)),
                "ts": int(ts_ms[i]),
                "service": p.service,
                "route": p.route,
                "model": p.model,
                "model_version": p.model_version,
                "tenant_id": str(tenants[i]),
                "user_id": None,
                "request_id": None,
                "trace_id": None,
                "span_id": None,
                "status": str(status[i]),
                "error_type": None if ok[i] else ("Timeout" if status[i] == "TIMEOUT" else
                                               "ContentFilter" if status[i] == "FILTERED" else str(error_type[i])),
                "latency_ms": float(latency_ms[i]),
                "ttft_ms": float(ttft_ms[i]) if ok[i] else None,
                "input_tokens": int(input_tokens[i]),
                "output_tokens": int(output_tokens[i]),
                "cost_usd": float(cost[i]),
                "finish_reason": "stop" if ok[i] else "error",
                "prompt_chars": int(input_tokens[i] * 4),
                "response_chars": int(output_tokens[i] * 4),
                "prompt_oov_rate": None,
                "topic": None,
                "confidence": None,
                "quality_scores": {},
                "resources": None,
                "prompt_text": None,
                "response_text": None,
                "attributes": {},
            })
        return events
