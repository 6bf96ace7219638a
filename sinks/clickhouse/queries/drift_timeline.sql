-- Drift detector results over time per model and feature: the statistic, its threshold, and whether it drifted.
SELECT
    window_start,
    service,
    model,
    model_version,
    feature,
    detector,
    statistic,
    value,
    threshold,
    drifted
FROM drift_metrics
WHERE ts >= now64(3) - INTERVAL {since_seconds:UInt32} SECOND
  AND ({model:String} = '' OR model = {model:String})
ORDER BY model, feature, detector, window_start
