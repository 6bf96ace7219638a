-- Migration 3: let ClickHouse parse the Kafka messages' Avro itself (sinks/clickhouse/avro_container.py),
-- and make a re-sent insert a no-op.

-- The Avro `resources` record arrives as one Tuple; EPHEMERAL: accepted on insert, never stored,
-- only read by the DEFAULT expressions that flatten it into the existing columns. A NULL record
-- becomes a tuple of NULLs (input_format_null_as_default).
ALTER TABLE inference_events ADD COLUMN IF NOT EXISTS resources Tuple(gpu_util Nullable(Float64), gpu_mem_mb Nullable(Float64), cpu_util Nullable(Float64), mem_mb Nullable(Float64)) EPHEMERAL;
ALTER TABLE inference_events MODIFY COLUMN gpu_util Nullable(Float64) DEFAULT resources.gpu_util;
ALTER TABLE inference_events MODIFY COLUMN gpu_mem_mb Nullable(Float64) DEFAULT resources.gpu_mem_mb;
ALTER TABLE inference_events MODIFY COLUMN cpu_util Nullable(Float64) DEFAULT resources.cpu_util;
ALTER TABLE inference_events MODIFY COLUMN mem_mb Nullable(Float64) DEFAULT resources.mem_mb;

-- Insert deduplication: a batch retried with the same insert_deduplication_token (its Kafka
-- offset ranges) after an insert that did land is dropped by ClickHouse. Replicated tables do
-- this by default; plain MergeTree needs a window. Redeliveries in other batch shapes are
-- collapsed by ReplacingMergeTree on event_id / feedback_id (queries read FINAL).
ALTER TABLE inference_events MODIFY SETTING non_replicated_deduplication_window = 1000;
ALTER TABLE feedback MODIFY SETTING non_replicated_deduplication_window = 1000;
