-- Migration 6: an alert is about one window of any key set (rules read every window: panes,
-- longer windows, feedback windows), so it says which: its key set, series label, the series'
-- fields as labels, and the window's size. service/model/model_version stay filled from the
-- labels ('' when the key set has no such field).
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS keyset LowCardinality(String) DEFAULT 'model' AFTER rule;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS series String DEFAULT '' AFTER keyset;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS labels Map(String, String) AFTER series;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS window_seconds UInt32 DEFAULT 60 AFTER window_start;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS hop_seconds UInt32 DEFAULT 0 AFTER window_seconds;
