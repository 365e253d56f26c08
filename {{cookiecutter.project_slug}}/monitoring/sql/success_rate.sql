-- Task success rate per DAG over a lookback window, worst first. Counts the final state of each
-- task instance that finished in the window (skipped ones are neither), plus the failed tries
-- that a retry hid: Airflow 3 keeps earlier tries in task_instance_history.
--
--   psql "$METADATA_DB_URL" -f monitoring/sql/success_rate.sql -v lookback='30 days'
\if :{?lookback} \else \set lookback '7 days' \endif

WITH settings AS (
    SELECT now() - :'lookback'::interval AS since
),
finished AS (
    SELECT ti.dag_id, ti.state, ti.duration
    FROM task_instance AS ti
    CROSS JOIN settings AS s
    WHERE ti.state IN ('success', 'failed', 'upstream_failed') AND ti.end_date >= s.since
),
failed_tries AS (
    SELECT h.dag_id, count(*) AS failed_tries
    FROM task_instance_history AS h
    CROSS JOIN settings AS s
    WHERE h.state = 'failed' AND h.end_date >= s.since
    GROUP BY h.dag_id
)
SELECT
    f.dag_id,
    count(*) AS finished,
    count(*) FILTER (WHERE f.state = 'success') AS succeeded,
    count(*) FILTER (WHERE f.state = 'failed') AS failed,
    count(*) FILTER (WHERE f.state = 'upstream_failed') AS upstream_failed,
    round(count(*) FILTER (WHERE f.state = 'success')::numeric / count(*), 4) AS success_rate,
    coalesce(max(t.failed_tries), 0) AS retried_failures,
    round(avg(f.duration)::numeric, 1) AS avg_duration_seconds
FROM finished AS f
LEFT JOIN failed_tries AS t ON t.dag_id = f.dag_id
GROUP BY f.dag_id
ORDER BY success_rate, f.dag_id;
