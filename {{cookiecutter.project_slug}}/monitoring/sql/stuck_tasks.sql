-- Task instances that look stuck: running for long, running without a recent heartbeat (the
-- scheduler fails those after [scheduler] task_instance_heartbeat_timeout, 5 minutes here), or
-- queued with no worker picking them up. Longest first.
--
--   psql "$METADATA_DB_URL" -f monitoring/sql/stuck_tasks.sql -v running_longer_than='30 minutes'
--
-- Thresholds are psql variables; set any of them with -v name=value.
\if :{?running_longer_than} \else \set running_longer_than '2 hours' \endif
\if :{?heartbeat_older_than} \else \set heartbeat_older_than '2 minutes' \endif
\if :{?queued_longer_than} \else \set queued_longer_than '10 minutes' \endif

WITH settings AS (
    SELECT
        :'running_longer_than'::interval AS running_longer_than,
        :'heartbeat_older_than'::interval AS heartbeat_older_than,
        :'queued_longer_than'::interval AS queued_longer_than
),
suspects AS (
    SELECT
        ti.*,
        CASE
            WHEN ti.state = 'queued' THEN 'queued too long'
            WHEN ti.last_heartbeat_at < now() - s.heartbeat_older_than THEN 'no recent heartbeat'
            ELSE 'running too long'
        END AS problem,
        now() - CASE WHEN ti.state = 'queued' THEN ti.queued_dttm ELSE ti.start_date END AS time_in_state
    FROM task_instance AS ti
    CROSS JOIN settings AS s
    WHERE
        (
            ti.state = 'running'
            AND (ti.start_date < now() - s.running_longer_than OR ti.last_heartbeat_at < now() - s.heartbeat_older_than)
        )
        OR (ti.state = 'queued' AND ti.queued_dttm < now() - s.queued_longer_than)
)
SELECT
    dag_id,
    task_id,
    run_id,
    map_index,
    state,
    problem,
    try_number,
    round(extract(EPOCH FROM time_in_state)::numeric / 60, 1) AS minutes_in_state,
    round(extract(EPOCH FROM now() - last_heartbeat_at)::numeric) AS seconds_since_heartbeat,
    hostname,
    pid,
    executor,
    queue,
    pool
FROM suspects
ORDER BY time_in_state DESC, dag_id, task_id, map_index;
