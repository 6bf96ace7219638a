-- Migration 4: window_rollups hold every window the aggregate layer closes, with its full
-- metrics: the series of each key set (the `window_keys` setting: by default model, tenant and
-- route), hopping windows (`hop_seconds` > 0) and hourly ones. A key set's fields are filled,
-- the other key columns are ''. Rows written before this migration are the model key set's
-- 1-minute windows, hence the defaults.
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS hop_seconds UInt32 DEFAULT 0 AFTER window_seconds;
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS keyset LowCardinality(String) DEFAULT 'model' AFTER hop_seconds;
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS tenant_id LowCardinality(String) DEFAULT '' AFTER model_version;
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS route LowCardinality(String) DEFAULT '' AFTER tenant_id;
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS latency_p90_ms Float64 AFTER latency_p50_ms;
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS ttft_p50_ms Nullable(Float64) AFTER latency_max_ms;
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS ttft_p95_ms Nullable(Float64) AFTER ttft_p50_ms;
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS ttft_p99_ms Nullable(Float64) AFTER ttft_p95_ms;
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS error_types Map(String, UInt64) AFTER cost_usd;
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS quality_means Map(String, Float64) AFTER error_types;
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS quality_counts Map(String, UInt64) AFTER quality_means;
-- A key set that spans Kafka partitions (tenant, route) is windowed per partition: one row per
-- (window, source partition), which add up; no percentiles for those (processors/windows/keys.py).
ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS source_partition Int32 DEFAULT -1 AFTER route;
ALTER TABLE window_rollups MODIFY COLUMN latency_p50_ms Nullable(Float64);
ALTER TABLE window_rollups MODIFY COLUMN latency_p90_ms Nullable(Float64);
ALTER TABLE window_rollups MODIFY COLUMN latency_p95_ms Nullable(Float64);
ALTER TABLE window_rollups MODIFY COLUMN latency_p99_ms Nullable(Float64);
ALTER TABLE window_rollups MODIFY COLUMN latency_max_ms Nullable(Float64);
