-- Cost and requests per tenant per day (requests without a price count as unpriced).
SELECT
    toDate(ts) AS day,
    tenant_id,
    count() AS requests,
    sum(coalesce(cost_usd, 0)) AS total_cost_usd,
    countIf(cost_usd IS NULL) AS unpriced_requests
FROM inference_events FINAL
WHERE ts >= now64(3) - INTERVAL {since_seconds:UInt32} SECOND
  AND ({model:String} = '' OR model = {model:String})
GROUP BY day, tenant_id
ORDER BY day, total_cost_usd DESC, tenant_id
