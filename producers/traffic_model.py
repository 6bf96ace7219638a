"""Synthetic inference traffic: a documented *model* of an LLM serving fleet, not recorded data.

What is modelled, per event:
- series: a fixed catalogue of services, routes and models (FLEET), picked with fixed weights;
- tokens: input ~ lognormal(median 600, sigma 0.9), output ~ lognormal(median 120, sigma 0.6),
  clipped to [1, 32k] / [1, 4k] (the Azure conversation trace has medians of the same order),
  unless given (trace replay);
- topic: drawn from TOPIC_MIX;
- latency (ServingModel): overhead + input / prefill rate + output / decode rate of the model,
  times a lognormal noise (sigma 0.25); TTFT = overhead + input / prefill rate, same noise;
- status: TIMEOUT when latency exceeds 30 s, else ERROR with p=0.5%, FILTERED with p=0.3%;
- cost: input and output tokens at the model's list price per 1M tokens; failed requests bill
  their input only.
A scenario (producers/scenarios.py) changes some of these from a point in event time on.
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
TOPICS = ("account", "billing", "technical", "product", "other")
TOPIC_MIX = (0.25, 0.20, 0.30, 0.15, 0.10)
INPUT_TOKENS_MEDIAN, INPUT_TOKENS_SIGMA = 600.0, 0.9
OUTPUT_TOKENS_MEDIAN, OUTPUT_TOKENS_SIGMA = 120.0, 0.6
TIMEOUT_MS = 30_000.0
ERROR_RATE = 0.005
FILTERED_RATE = 0.003
ERROR_TYPES = ("UpstreamError", "CUDAOutOfMemory", "RateLimitError")


@dataclass
class TrafficArrays:
    """Per-event arrays a scenario may change before the events are built."""

    ts_ms: np.ndarray
    profile: np.ndarray  # index into the fleet
    model_version: np.ndarray  # str
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    topic: np.ndarray  # str
    latency_factor: np.ndarray  # multiplies latency and TTFT
    error_rate: np.ndarray
    price_factor: np.ndarray  # multiplies cost


class TrafficModel:
    def __init__(self, seed: int | None = None, fleet: tuple[ModelProfile, ...] = FLEET):
        self.rng = np.random.default_rng(seed)
        self.fleet = fleet
        self._weights = np.array([p.weight for p in fleet]) / sum(p.weight for p in fleet)
        self._fleet_column = {
            name: np.array([getattr(p, name) for p in fleet])
            for name in ("model", "model_version", "overhead_ms", "prefill_tokens_per_s",
                         "decode_tokens_per_s", "usd_per_1m_input", "usd_per_1m_output")
        }

    def arrays(self, ts_ms: np.ndarray, input_tokens=None, output_tokens=None, profile=None) -> TrafficArrays:
        """Sample what is not given: series, tokens, topics."""
        n = int(ts_ms.size)
        rng = self.rng
        if profile is None:
            profile = rng.choice(len(self.fleet), size=n, p=self._weights)
        if input_tokens is None:
            input_tokens = rng.lognormal(np.log(INPUT_TOKENS_MEDIAN), INPUT_TOKENS_SIGMA, n)
        if output_tokens is None:
            output_tokens = rng.lognormal(np.log(OUTPUT_TOKENS_MEDIAN), OUTPUT_TOKENS_SIGMA, n)
        return TrafficArrays(
            ts_ms=np.asarray(ts_ms, dtype=np.int64),
            profile=np.asarray(profile),
            model_version=self._fleet_column["model_version"][profile].astype(object),
            input_tokens=np.clip(np.asarray(input_tokens), 1, 32_000).astype(np.int64),
            output_tokens=np.clip(np.asarray(output_tokens), 1, 4_000).astype(np.int64),
            topic=rng.choice(np.array(TOPICS, dtype=object), size=n, p=TOPIC_MIX),
            latency_factor=np.ones(n),
            error_rate=np.full(n, ERROR_RATE),
            price_factor=np.ones(n),
        )

    def model_of(self, traffic: TrafficArrays) -> np.ndarray:
        return self._fleet_column["model"][traffic.profile]

    def events(self, ts_ms: np.ndarray, scenarios=(), **given) -> list[dict]:
        """One event per timestamp (epoch ms) as dicts ready for the Avro codec.

        `scenarios`: things with `apply(model, traffic)` (see producers/scenarios.py), applied in
        turn; `given` passes recorded input_tokens / output_tokens / profile (trace replay).
        """
        traffic = self.arrays(np.asarray(ts_ms), **given)
        for scenario in scenarios:
            scenario.apply(self, traffic)
        return self._serve(traffic)

    def _serve(self, t: TrafficArrays) -> list[dict]:
        """The serving model: latency, TTFT, status and cost from tokens (see module doc)."""
        n = int(t.ts_ms.size)
        rng = self.rng
        col = {name: values[t.profile] for name, values in self._fleet_column.items()}
        noise = rng.lognormal(0.0, 0.25, n) * t.latency_factor
        ttft_ms = (col["overhead_ms"] + t.input_tokens / col["prefill_tokens_per_s"] * 1000) * noise
        latency_ms = ttft_ms + t.output_tokens / col["decode_tokens_per_s"] * 1000 * noise
        roll = rng.random(n)
        status = np.where(
            latency_ms > TIMEOUT_MS, "TIMEOUT",
            np.where(roll < t.error_rate, "ERROR", np.where(roll < t.error_rate + FILTERED_RATE, "FILTERED", "OK")),
        )
        latency_ms = np.minimum(latency_ms, TIMEOUT_MS)
        ok = status == "OK"
        output_tokens = np.where(ok, t.output_tokens, 0)  # a failed request generates nothing billable
        cost = (t.input_tokens * col["usd_per_1m_input"] + output_tokens * col["usd_per_1m_output"]) / 1e6 * t.price_factor
        error_type = np.where(status == "TIMEOUT", "Timeout", np.where(
            status == "FILTERED", "ContentFilter", rng.choice(ERROR_TYPES, size=n)))
        tenants = rng.choice(TENANTS, size=n)
        return [
            {
                "event_id": str(uuid.UUID(bytes=rng.bytes(16), version=4)),
                "ts": int(t.ts_ms[i]),
                "service": self.fleet[t.profile[i]].service,
                "route": self.fleet[t.profile[i]].route,
                "model": str(col["model"][i]),
                "model_version": str(t.model_version[i]),
                "tenant_id": str(tenants[i]),
                "user_id": None,
                "request_id": None,
                "trace_id": None,
                "span_id": None,
                "status": str(status[i]),
                "error_type": None if ok[i] else str(error_type[i]),
                "latency_ms": float(latency_ms[i]),
                "ttft_ms": float(ttft_ms[i]) if ok[i] else None,
                "input_tokens": int(t.input_tokens[i]),
                "output_tokens": int(output_tokens[i]),
                "cost_usd": float(cost[i]),
                "finish_reason": "stop" if ok[i] else "error",
                "prompt_chars": int(t.input_tokens[i] * 4),
                "response_chars": int(output_tokens[i] * 4),
                "prompt_oov_rate": None,
                "topic": str(t.topic[i]),
                "confidence": None,
                "quality_scores": {},
                "resources": None,
                "prompt_text": None,
                "response_text": None,
                "attributes": {},
            }
            for i in range(n)
        ]
