-- Migration 7: drift rows say how many events they judged, and a change detector's row (ADWIN:
-- processors/drift/adwin.py) what it compared: `value` is the mean after the change it found,
-- `reference` the mean before, over `events` and `reference_events` requests. A windowed score
-- (processors/drift/scorer.py) has its pane's events and no reference value (nan, 0).
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS reference Float64 DEFAULT nan AFTER threshold;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS events UInt64 DEFAULT 0 AFTER reference;
ALTER TABLE drift_metrics ADD COLUMN IF NOT EXISTS reference_events UInt64 DEFAULT 0 AFTER events;
