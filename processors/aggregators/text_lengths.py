"""Prompt and response length in characters per request, p50 and p95, as the SDK measured them
on the text it saw (the text itself need not leave the service). Drift features: characters,
unlike tokens, can be counted the same way in a fine-tuning set (`inferwatch baseline build
--from-jsonl`), so they compare live traffic with what the model was tuned on."""

from __future__ import annotations

from inferwatch.processors.aggregators.quantiles import QuantileSketch, percentile_outputs


class PromptChars(QuantileSketch):
    name = "prompt_chars"
    order = 92
    drift_feature = column = "prompt_chars"
    percentiles = (0.50, 0.95)
    outputs = percentile_outputs("prompt_chars", percentiles, unit="")


class ResponseChars(QuantileSketch):
    name = "response_chars"
    order = 94
    drift_feature = column = "response_chars"
    percentiles = (0.50, 0.95)
    outputs = percentile_outputs("response_chars", percentiles, unit="")
