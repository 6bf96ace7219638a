-- Failed requests per model and error type, with their share of the model's requests.
SELECT
    model,
    status,
    error_type,
    count() AS failures,
    count() / any(model_requests) AS share_of_requests
FROM inference_events FINAL
INNER JOIN (
    SELECT model, count() AS model_requests
    FROM inference_events FINAL
    WHERE ts >= now64(3) - INTERVAL {since_seconds:UInt32} SECOND
    GROUP BY model
) AS totals USING (model)
WHERE ts >= now64(3) - INTERVAL {since_seconds:UInt32} SECOND
  AND ({model:String} = '' OR model = {model:String})
  AND status != 'OK'
GROUP BY model, status, error_type
ORDER BY failures DESC, model, status, error_type
