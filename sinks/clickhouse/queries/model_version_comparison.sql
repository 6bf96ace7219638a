-- The two busiest versions of --model side by side: latency, errors, cost, and whether the latency difference is significant (Welch's t-test, p < 0.05).
-- No row when the model has fewer than two versions in the look-back.
WITH (
    SELECT groupArray(model_version) FROM (
        SELECT model_version
        FROM inference_events FINAL
        WHERE ts >= now64(3) - INTERVAL {since_seconds:UInt32} SECOND AND model = {model:String}
        GROUP BY model_version
        ORDER BY count() DESC, model_version
        LIMIT 2
    )
) AS versions
SELECT
    {model:String} AS compared_model,
    versions[1] AS version_a,
    versions[2] AS version_b,
    countIf(model_version = version_a) AS requests_a,
    countIf(model_version = version_b) AS requests_b,
    avgIf(latency_ms, model_version = version_a) AS mean_latency_a_ms,
    avgIf(latency_ms, model_version = version_b) AS mean_latency_b_ms,
    mean_latency_b_ms - mean_latency_a_ms AS latency_difference_ms,
    countIf(status != 'OK' AND model_version = version_a) / requests_a AS error_rate_a,
    countIf(status != 'OK' AND model_version = version_b) / requests_b AS error_rate_b,
    avgIf(coalesce(cost_usd, 0), model_version = version_a) AS mean_cost_a_usd,
    avgIf(coalesce(cost_usd, 0), model_version = version_b) AS mean_cost_b_usd,
    welchTTest(latency_ms, toUInt8(model_version = version_b)).2 AS latency_p_value,
    latency_p_value < 0.05 AS significant
FROM inference_events FINAL
WHERE ts >= now64(3) - INTERVAL {since_seconds:UInt32} SECOND
  AND model = {model:String}
  AND has(versions, model_version)
  AND length(versions) = 2
