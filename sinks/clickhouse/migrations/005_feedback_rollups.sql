-- Migration 5: one row per closed feedback window (processors/windows/feedback.py): feedback
-- counts per (service, model) and minute of feedback time, per source partition (feedback is
-- keyed by request_id, so a series spans partitions: rows add up). The feedback ratio of a
-- window is sum(thumbs_up) / (sum(thumbs_up) + sum(thumbs_down)) over its rows.
CREATE TABLE IF NOT EXISTS feedback_rollups
(
    window_start      DateTime('UTC'),
    window_seconds    UInt32,
    service           LowCardinality(String),
    model             LowCardinality(String),
    source_partition  Int32,
    feedback          UInt64,
    thumbs_up         UInt64,
    thumbs_down       UInt64,
    rating_sum        Float64,
    ratings           UInt64,
    hallucinations    UInt64,
    judged            UInt64,
    eval_sums         Map(String, Float64),
    eval_counts       Map(String, UInt64),
    closed_at         DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (service, model, window_start);
