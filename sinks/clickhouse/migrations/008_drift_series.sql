-- Migration 8: drift is scored for groups within a model too (a key set with service, model and
-- e.g. attributes.language: docs/drift.md), so a row says which series it is about: its key set
-- and series label (the model series: 'model' and service|model|model_version).
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS keyset LowCardinality(String) DEFAULT 'model' AFTER model_version;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS series String DEFAULT '' AFTER keyset;
