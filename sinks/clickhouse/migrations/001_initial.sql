-- Migration 1: the initial tables. Applied once by sinks/clickhouse/migrations.py; statements
-- stay idempotent (IF NOT EXISTS) so a run interrupted half-way can be repeated; the same DDL runs
-- on embedded chdb and on a ClickHouse server.
-- The sink drops full-line comments and splits the rest on semicolons: keep comments on their own
-- lines and semicolons out of string literals.
-- All times are UTC; DateTime64(3) keeps the events' millisecond precision.

-- One row per inference event, one column per field of schemas/inference_event.avsc (the nested
-- `resources` record flattened to gpu_util .. mem_mb).
-- ReplacingMergeTree: an event redelivered by Kafka has the same sorting key (its event_id, ts,
-- service and model never change), so background merges collapse the copies, keeping the last
-- ingested one. Exact dedup at query time (FINAL, or insert dedup tokens) is a later issue.
CREATE TABLE IF NOT EXISTS inference_events
(
    event_id        UUID,
    -- Event time. Delta + ZSTD: rows are sorted by time within a series, so deltas are tiny.
    ts              DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    service         LowCardinality(String),
    route           LowCardinality(String),
    model           LowCardinality(String),
    model_version   LowCardinality(String),
    tenant_id       LowCardinality(String),
    -- Ids are high-cardinality random strings: ZSTD does better than the default LZ4.
    user_id         Nullable(String) CODEC(ZSTD(1)),
    request_id      Nullable(String) CODEC(ZSTD(1)),
    trace_id        Nullable(String) CODEC(ZSTD(1)),
    span_id         Nullable(String) CODEC(ZSTD(1)),
    -- LowCardinality(String), not Enum8: a new Avro symbol must not make inserts fail.
    status          LowCardinality(String),
    error_type      LowCardinality(Nullable(String)),
    latency_ms      Float64,
    ttft_ms         Nullable(Float64),
    input_tokens    UInt32,
    output_tokens   UInt32,
    cost_usd        Nullable(Float64),
    finish_reason   LowCardinality(Nullable(String)),
    prompt_chars    UInt32,
    response_chars  UInt32,
    prompt_oov_rate Nullable(Float64),
    topic           LowCardinality(Nullable(String)),
    confidence      Nullable(Float64),
    quality_scores  Map(String, Float64),
    gpu_util        Nullable(Float64),
    gpu_mem_mb      Nullable(Float64),
    cpu_util        Nullable(Float64),
    mem_mb          Nullable(Float64),
    -- Sampled, redacted text: by far the largest values, and natural language compresses well.
    prompt_text     Nullable(String) CODEC(ZSTD(3)),
    response_text   Nullable(String) CODEC(ZSTD(3)),
    attributes      Map(String, String),
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1))
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toDate(ts)
ORDER BY (service, model, ts, event_id);

-- One row per closed tumbling window of one (service, model, model_version).
CREATE TABLE IF NOT EXISTS window_rollups
(
    window_start    DateTime('UTC'),
    window_seconds  UInt32,
    service         LowCardinality(String),
    model           LowCardinality(String),
    model_version   LowCardinality(String),
    events          UInt64,
    ok              UInt64,
    errors          UInt64,
    timeouts        UInt64,
    filtered        UInt64,
    latency_p50_ms  Float64,
    latency_p95_ms  Float64,
    latency_p99_ms  Float64,
    latency_max_ms  Float64,
    input_tokens    UInt64,
    output_tokens   UInt64,
    cost_usd        Float64,
    closed_at       DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(window_start)
ORDER BY (service, model, model_version, window_start);

-- Kafka messages that did not decode, kept raw for inspection and replay.
-- `partition` and `offset` are keywords elsewhere in ClickHouse SQL: quoted here, and best quoted
-- in queries too.
CREATE TABLE IF NOT EXISTS dead_letters
(
    received_at     DateTime64(3, 'UTC'),
    topic           LowCardinality(String),
    `partition`     Int32,
    `offset`        Int64,
    reason          String,
    -- The raw message value: arbitrary bytes (ClickHouse String is a byte string).
    payload         String CODEC(ZSTD(3))
)
ENGINE = MergeTree
ORDER BY received_at;

-- Every alert fired by a rule on a closed window.
CREATE TABLE IF NOT EXISTS alerts
(
    fired_at        DateTime64(3, 'UTC'),
    rule            LowCardinality(String),
    service         LowCardinality(String),
    model           LowCardinality(String),
    model_version   LowCardinality(String),
    window_start    DateTime('UTC'),
    value           Float64,
    threshold       Float64,
    message         String
)
ENGINE = MergeTree
ORDER BY (fired_at, rule);
