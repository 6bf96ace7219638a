"""Named traffic scenarios: what changes in the modelled traffic, and from when.

Each scenario changes the traffic of one model (default: the fleet's first, the chat model) from
the fraction `at` of the run's event-time span on (a `Change`; a run may have several); tests and
the demo assert that the pipeline notices exactly that. `SCENARIOS` maps the names `inferwatch simulate --scenario` accepts to a
one-line description of the change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inferwatch.producers.traffic_model import FLEET, TOPICS, TrafficArrays, TrafficModel

SCENARIOS = {
    "steady": "nothing changes",
    "latency-regression": "the model's latency and TTFT x factor (default 4)",
    "error-spike": "the model's error rate becomes 10% (factor unused)",
    "prompt-drift": "the model's prompts get factor (default 4) times longer and mostly 'technical'",
    "output-drift": "the model's responses get factor (default 4) times shorter",
    "cost-spike": "the model's cost per request x factor (default 4): e.g. routed to a pricier tier",
    "new-model-version": "half the model's traffic moves to version '<v>-canary', 1.5x slower, 2x longer answers",
}
DEFAULT_FACTOR = 4.0


@dataclass(frozen=True)
class Scenario:
    name: str
    model: str
    from_ts_ms: int
    factor: float = DEFAULT_FACTOR

    def __post_init__(self):
        if self.name not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.name!r}; choose from {', '.join(SCENARIOS)}")
        if self.factor <= 0:
            raise ValueError("scenario factor must be positive")

    def apply(self, traffic_model: TrafficModel, t: TrafficArrays) -> None:
        hit = (traffic_model.model_of(t) == self.model) & (t.ts_ms >= self.from_ts_ms)
        rng = traffic_model.rng
        if self.name == "latency-regression":
            t.latency_factor[hit] *= self.factor
        elif self.name == "error-spike":
            t.error_rate[hit] = 0.10
        elif self.name == "prompt-drift":
            t.input_tokens[hit] = np.clip(t.input_tokens[hit] * self.factor, 1, 32_000).astype(np.int64)
            t.topic[hit] = rng.choice(np.array(TOPICS, dtype=object), size=int(hit.sum()),
                                      p=(0.05, 0.05, 0.80, 0.05, 0.05))
        elif self.name == "output-drift":
            t.output_tokens[hit] = np.maximum(1, t.output_tokens[hit] / self.factor).astype(np.int64)
        elif self.name == "cost-spike":
            t.price_factor[hit] *= self.factor
        elif self.name == "new-model-version":
            canary = hit & (rng.random(t.ts_ms.size) < 0.5)
            t.model_version[canary] = [f"{v}-canary" for v in t.model_version[canary]]
            t.latency_factor[canary] *= 1.5
            t.output_tokens[canary] *= 2


@dataclass(frozen=True)
class Change:
    """A scenario planned for a run: from the fraction `at` of its event-time span on."""

    scenario: str
    model: str = FLEET[0].model
    factor: float = DEFAULT_FACTOR
    at: float = 0.5

    def starting(self, start_ms: int, span_ms: float) -> Scenario:
        return Scenario(self.scenario, self.model, int(start_ms + self.at * span_ms), self.factor)
