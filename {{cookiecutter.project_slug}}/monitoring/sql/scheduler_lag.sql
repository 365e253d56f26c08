-- Scheduler lag per DAG: how long runs waited between being due (run_after: the end of the data
-- interval for a scheduled run, the trigger time for a manual one) and being started. Lists
-- the DAGs whose average lag over the window is at least min_average_lag, worst first.
--
--   psql "$METADATA_DB_URL" -f monitoring/sql/scheduler_lag.sql -v min_average_lag='1 minute'
\if :{?lookback} \else \set lookback '24 hours' \endif
\if :{?min_average_lag} \else \set min_average_lag '5 minutes' \endif

WITH settings AS (
    SELECT
        now() - :'lookback'::interval AS since,
        extract(EPOCH FROM :'min_average_lag'::interval) AS min_average_lag_seconds
),
lags AS (
    SELECT dr.dag_id, extract(EPOCH FROM dr.start_date - dr.run_after) AS lag_seconds
    FROM dag_run AS dr
    CROSS JOIN settings AS s
    -- Backfills are started on purpose long after they were due.
    WHERE dr.start_date >= s.since AND dr.run_type <> 'backfill'
)
SELECT
    l.dag_id,
    count(*) AS runs,
    round(avg(l.lag_seconds)::numeric, 1) AS avg_lag_seconds,
    round(percentile_cont(0.95) WITHIN GROUP (ORDER BY l.lag_seconds)::numeric, 1) AS p95_lag_seconds,
    round(max(l.lag_seconds)::numeric, 1) AS max_lag_seconds
FROM lags AS l
GROUP BY l.dag_id
HAVING avg(l.lag_seconds) >= (SELECT min_average_lag_seconds FROM settings)
ORDER BY avg_lag_seconds DESC, l.dag_id;
