-- Migration 2: user feedback and evaluation scores (schemas/feedback_event.avsc), and the drift
-- detectors' outputs. Idempotent, like every migration.

-- One row per FeedbackEvent; joined to inference_events by request_id.
CREATE TABLE IF NOT EXISTS feedback
(
    feedback_id     UUID,
    ts              DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    request_id      String,
    service         LowCardinality(String),
    model           LowCardinality(Nullable(String)),
    source          LowCardinality(String),
    thumbs          Nullable(Int8),
    rating          Nullable(Float64),
    eval_scores     Map(String, Float64),
    hallucination   Nullable(Bool),
    judge           LowCardinality(Nullable(String)),
    comment         Nullable(String) CODEC(ZSTD(3)),
    user_id         Nullable(String) CODEC(ZSTD(1)),
    attributes      Map(String, String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (service, request_id, feedback_id);

-- One row per evaluation of a drift detector (PSI window, ADWIN, ...) on one feature of a series.
CREATE TABLE IF NOT EXISTS drift_metrics
(
    ts              DateTime64(3, 'UTC'),
    window_start    DateTime('UTC'),
    window_seconds  UInt32,
    service         LowCardinality(String),
    model           LowCardinality(String),
    model_version   LowCardinality(String),
    feature         LowCardinality(String),
    detector        LowCardinality(String),
    statistic       LowCardinality(String),
    value           Float64,
    threshold       Float64,
    drifted         Bool
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (service, model, feature, detector, ts);
