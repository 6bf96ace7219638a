"""Input and output tokens per request, p50 and p95: how long prompts and answers are. Both are
drift features (processors/drift/): prompt and answer length are what moves first when users or
the model change."""

from __future__ import annotations

from inferwatch.processors.aggregators.quantiles import QuantileSketch, percentile_outputs


class InputLength(QuantileSketch):
    name = "input_length"
    drift_feature = column = "input_tokens"
    percentiles = (0.50, 0.95)
    outputs = percentile_outputs("input_tokens", percentiles, unit="")


class OutputLength(QuantileSketch):
    name = "output_length"
    drift_feature = column = "output_tokens"
    percentiles = (0.50, 0.95)
    outputs = percentile_outputs("output_tokens", percentiles, unit="")
