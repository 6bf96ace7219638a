-- Latency percentiles (exact: the value at rank floor(q * n) of the sorted latencies) and error rate per model per minute.
SELECT
    toStartOfMinute(ts) AS minute,
    model,
    count() AS requests,
    quantileExact(0.50)(latency_ms) AS p50_ms,
    quantileExact(0.95)(latency_ms) AS p95_ms,
    quantileExact(0.99)(latency_ms) AS p99_ms,
    countIf(status != 'OK') / count() AS error_rate
FROM inference_events FINAL
WHERE ts >= now64(3) - INTERVAL {since_seconds:UInt32} SECOND
  AND ({model:String} = '' OR model = {model:String})
GROUP BY minute, model
ORDER BY model, minute
