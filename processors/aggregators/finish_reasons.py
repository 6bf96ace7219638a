"""Events per finish reason (stop, length, content_filter, ...): how answers end, a categorical
drift feature (more `length` or `content_filter` is a change in what the model answers)."""

from __future__ import annotations

from inferwatch.processors.aggregators.base import Output
from inferwatch.processors.aggregators.category_counts import CategoryCounts


class FinishReasons(CategoryCounts):
    name = "finish_reasons"
    order = 64
    outputs = (Output("finish_reasons", "map_u64", redis_field="finish_reason:{}"),)
    column = "finish_reason"
    drift_feature = "finish_reason"
