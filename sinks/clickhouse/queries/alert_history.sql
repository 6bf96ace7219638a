-- Alerts fired, newest first.
SELECT fired_at, rule, service, model, model_version, window_start, value, threshold, message
FROM alerts
WHERE fired_at >= now64(3) - INTERVAL {since_seconds:UInt32} SECOND
  AND ({model:String} = '' OR model = {model:String})
ORDER BY fired_at DESC
LIMIT {limit:UInt32}
