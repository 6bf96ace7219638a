-- Input and output tokens per model: totals and means per request.
SELECT
    model,
    count() AS requests,
    sum(input_tokens) AS total_input_tokens,
    sum(output_tokens) AS total_output_tokens,
    avg(input_tokens) AS input_tokens_mean,
    avg(output_tokens) AS output_tokens_mean
FROM inference_events FINAL
WHERE ts >= now64(3) - INTERVAL {since_seconds:UInt32} SECOND
  AND ({model:String} = '' OR model = {model:String})
GROUP BY model
ORDER BY model
