-- The slowest requests, with what identifies them for tracing.
SELECT ts, service, route, model, model_version, latency_ms, ttft_ms, status, request_id, trace_id
FROM inference_events FINAL
WHERE ts >= now64(3) - INTERVAL {since_seconds:UInt32} SECOND
  AND ({model:String} = '' OR model = {model:String})
ORDER BY latency_ms DESC, event_id
LIMIT {limit:UInt32}
