"""Events per topic (the event's `topic`, when its producer classifies prompts): the topic mix,
a categorical drift feature."""

from __future__ import annotations

from inferwatch.processors.aggregators.base import Output
from inferwatch.processors.aggregators.category_counts import CategoryCounts


class Topics(CategoryCounts):
    name = "topics"
    order = 62
    outputs = (Output("topics", "map_u64", redis_field="topic:{}"),)
    column = "topic"
    drift_feature = "topic"
