-- The largest XComs kept in the metadata DB. Values of [common.io] xcom_objectstorage_threshold
-- (64 KiB here) and more go to object storage and leave only their path in the DB, so what this
-- lists are the values under it that still add up: row by row they slow the scheduler's and the
-- UI's queries and bloat backups. Largest first.
--
--   psql "$METADATA_DB_URL" -f monitoring/sql/xcom_size_audit.sql -v min_bytes=50000
\if :{?min_bytes} \else \set min_bytes 10240 \endif
\if :{?row_limit} \else \set row_limit 20 \endif

SELECT
    x.dag_id,
    x.task_id,
    x.run_id,
    x.map_index,
    x.key,
    octet_length(x.value::text) AS value_bytes,
    pg_size_pretty(octet_length(x.value::text)::bigint) AS value_size,
    pg_column_size(x.value) AS stored_bytes,
    x.timestamp
FROM xcom AS x
WHERE octet_length(x.value::text) >= :min_bytes
ORDER BY value_bytes DESC, x.dag_id, x.task_id, x.map_index
LIMIT :row_limit;
