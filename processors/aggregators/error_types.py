"""Failed events per error type."""

from __future__ import annotations

from inferwatch.processors.aggregators.base import Output
from inferwatch.processors.aggregators.category_counts import CategoryCounts


class ErrorTypes(CategoryCounts):
    name = "error_types"
    order = 60
    outputs = (Output("error_types", "map_u64", redis_field="error_type:{}"),)
    column = "error_type"  # None for OK events
